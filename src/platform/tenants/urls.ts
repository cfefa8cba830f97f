/** Where a tenant is served, from the server settings. */
import type { Config } from '../../config.ts';

/** The origin of a tenant (`http://acme.localhost:8080`), without a trailing slash. */
export function tenantOrigin(config: Config, slug: string): string {
  const port = config.server.port;
  const defaultPort = port === 80 || port === 443;
  return `http://${slug}.${config.server.baseDomain}${defaultPort ? '' : `:${port}`}`;
}

/** The URL of a tenant's home page. */
export function tenantUrl(config: Config, slug: string): string {
  return `${tenantOrigin(config, slug)}/`;
}
