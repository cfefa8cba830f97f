/** Where a tenant is served, from the server settings: the address users and mail links use. */
import type { Config } from '../../config.ts';

/** The public scheme and port: HTTPS on tls.port when served here, on 443 behind a proxy, plain HTTP only when TLS is off. */
function publicEndpoint(config: Config, listening?: { port?: number; tlsPort?: number }): { scheme: 'http' | 'https'; port: number } {
  const tls = config.server.tls;
  if (tls.mode === 'off') return { scheme: 'http', port: listening?.port ?? config.server.port };
  if (tls.mode === 'proxy') return { scheme: 'https', port: 443 };
  return { scheme: 'https', port: listening?.tlsPort ?? tls.port };
}

/** The origin of a tenant (`https://acme.localhost:8443`), without a trailing slash. `listening` gives the ports actually bound. */
export function tenantOrigin(config: Config, slug: string, listening?: { port?: number; tlsPort?: number }): string {
  const { scheme, port } = publicEndpoint(config, listening);
  const defaultPort = (scheme === 'https' && port === 443) || (scheme === 'http' && port === 80);
  return `${scheme}://${slug}.${config.server.baseDomain}${defaultPort ? '' : `:${port}`}`;
}

/** The URL of a tenant's home page. */
export function tenantUrl(config: Config, slug: string, listening?: { port?: number; tlsPort?: number }): string {
  return `${tenantOrigin(config, slug, listening)}/`;
}
