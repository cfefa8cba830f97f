/**
 * HTTPS: the TLS options the server listens with, the redirect from plain HTTP, and HSTS.
 * Plain HTTP only ever redirects: directly (a small listener on server.port) or, behind a proxy,
 * for every request the trusted proxy did not mark as HTTPS. Health checks stay answerable over
 * HTTP behind a proxy, because load balancers probe that way.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { makeSelfSigned } from '../platform/tls/certificates.ts';
import type { FastifyServerFactory } from 'fastify';
import type { Config } from '../config.ts';
import type { TlsMaterial } from '../platform/tls/certificates.ts';
import type { App } from './app.ts';

const BASE_TLS = { minVersion: 'TLSv1.2', honorCipherOrder: true } as const;

/**
 * TLS 1.2 and 1.3 only, with Node's default (forward-secret, AEAD-first) cipher list. With a local
 * authority (self-signed mode), each tenant host gets its own certificate on first contact.
 */
export function tlsOptions(material: TlsMaterial, baseDomain: string): TlsOptions & SecureContextOptions {
  const options: TlsOptions & SecureContextOptions = { cert: material.cert, key: material.key, ...BASE_TLS };
  const issuer = material.issuer;
  if (!issuer) return options;
  const contexts = new LRUCache<string, Promise<SecureContext>>({ max: 1000 });
  options.SNICallback = (servername, callback) => {
    const name = servername.toLowerCase();
    if (!hostAllowed(name, baseDomain) || !/^[a-z0-9.-]{1,253}$/.test(name) || material.names.includes(name)) {
      callback(null, undefined);
      return;
    }
    let context = contexts.get(name);
    if (!context) {
      context = makeSelfSigned([name], issuer).then((leaf) => createSecureContext({ cert: leaf.cert, key: leaf.key, ...BASE_TLS }));
      contexts.set(name, context);
    }
    context.then(
      (ctx) => {
        callback(null, ctx);
      },
      (err: unknown) => {
        contexts.delete(name);
        callback(err instanceof Error ? err : new Error(String(err)), undefined);
      },
    );
  };
  return options;
}

/** A Fastify server factory that serves HTTPS with this certificate. */
export function httpsServerFactory(material: TlsMaterial, baseDomain: string): FastifyServerFactory {
  return (handler) => createHttpsServer(tlsOptions(material, baseDomain), handler);
}

/** The HSTS header value, or null when none should be sent (disabled, or a self-signed certificate a browser could never pin). */
export function hstsValue(config: Config): string | null {
  const { mode, hstsMaxAgeSeconds } = config.server.tls;
  if (mode === 'self-signed' || mode === 'off' || hstsMaxAgeSeconds === 0) return null;
  return `max-age=${hstsMaxAgeSeconds}`;
}

/** Where a plain-HTTP request for `host` and `url` is sent: the same host (without its port) on the HTTPS port. */
export function httpsLocation(host: string, url: string, httpsPort: number): string | null {
  const colon = host.lastIndexOf(':');
  const name = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  const givenPort = colon === -1 ? '' : host.slice(colon + 1);
  if (!/^[a-z0-9.-]{1,253}$/.test(name) || !/^\d{0,5}$/.test(givenPort) || !url.startsWith('/') || url.startsWith('//')) return null;
  const port = httpsPort === 443 ? '' : `:${httpsPort}`;
  return `https://${name}${port}${url}`;
}

function hostAllowed(host: string, baseDomain: string): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return name === baseDomain || name.endsWith(`.${baseDomain}`) || name === 'localhost' || name.endsWith('.localhost');
}

/**
 * The plain-HTTP listener next to a TLS one: 308 to the HTTPS address for our own hosts (a method
 * and body keep their meaning), 400 for anything else, so it is never an open redirect.
 */
export function createRedirectServer(options: { baseDomain: string; httpsPort: number }): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const host = req.headers.host ?? '';
    const location = hostAllowed(host, options.baseDomain) ? httpsLocation(host, req.url ?? '/', options.httpsPort) : null;
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    if (!location) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('HTTPS only; this host is not served here.\n');
      return;
    }
    res.writeHead(308, { location, 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`HTTPS only: ${location}\n`);
  });
}

/** Behind a TLS-terminating proxy: what the proxy did not mark as HTTPS is redirected to it. */
export function installProxyRedirect(app: App, config: Config): void {
  if (config.server.tls.mode !== 'proxy') return;
  app.addHook('onRequest', async (request, reply) => {
    if (request.protocol === 'https' || request.routeOptions.config.tenancy === 'none') return;
    const location = httpsLocation(request.host, request.url, 443);
    if (!location) return;
    await reply.code(308).header('location', location).type('text/plain; charset=utf-8').send(`HTTPS only: ${location}\n`);
  });
}
