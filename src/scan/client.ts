/**
 * The scanner's HTTP client: requests to one deployment over HTTPS (or HTTP), with a cookie jar per
 * host, a trusted CA, `--resolve`-style addressing (so `acme.localhost` reaches 127.0.0.1 whatever the
 * resolver does), and the time each response took.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { connect, type SecureVersion } from 'node:tls';

export interface ScanResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
  /** The body as JSON in the shape the caller expects, or null when it is not JSON. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape, as with JSON.parse
  json<T>(): T | null;
}

export interface ClientOptions {
  /** PEM certificates to trust besides the system's. */
  ca?: string | undefined;
  /** Connect to this address instead of resolving host names. */
  connectTo?: string | undefined;
  timeoutMs?: number;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Cookie jar to send from and store into; none by default. */
  jar?: CookieJar;
}

/** A response header as one string ('' when absent; repeated headers joined). */
export function headerOf(res: Pick<ScanResponse, 'headers'>, name: string): string {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/** Cookies by name, for one host. */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  /** The raw Set-Cookie lines seen, newest last. */
  readonly setCookies: string[] = [];

  header(): string | undefined {
    return this.cookies.size === 0 ? undefined : [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      this.setCookies.push(line);
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now()));
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

export class ScanClient {
  readonly #options: ClientOptions;

  constructor(options: ClientOptions = {}) {
    this.#options = options;
  }

  /** Opens a TLS connection limited to `maxVersion`; resolves with the protocol agreed, or the error. */
  tlsHandshake(url: string, versions: { min?: SecureVersion; max: SecureVersion }): Promise<{ protocol: string | null } | { error: string }> {
    const target = new URL(url);
    const host = this.#options.connectTo ?? target.hostname;
    return new Promise((resolve) => {
      const socket = connect(
        {
          host,
          port: Number(target.port || 443),
          servername: target.hostname,
          minVersion: versions.min ?? 'TLSv1',
          maxVersion: versions.max,
          ...(this.#options.ca ? { ca: this.#options.ca } : {}),
          timeout: this.#options.timeoutMs ?? 30_000,
        },
        () => {
          const protocol = socket.getProtocol();
          socket.end();
          resolve({ protocol });
        },
      );
      socket.on('error', (err: Error) => {
        resolve({ error: err.message });
      });
      socket.on('timeout', () => {
        socket.destroy();
        resolve({ error: 'timed out' });
      });
    });
  }

  /** One request; never throws for an HTTP status, only for a transport failure. */
  request(url: string, options: RequestOptions = {}): Promise<ScanResponse> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const headers: Record<string, string> = { 'user-agent': 'taskflow-scan/1', ...options.headers };
    const cookie = options.jar?.header();
    if (cookie && headers.cookie === undefined) headers.cookie = cookie;
    if (options.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    const connectTo = this.#options.connectTo;
    const lookup: LookupFunction | undefined = connectTo
      ? (_hostname, opts, callback) => {
          if (opts.all) callback(null, [{ address: connectTo, family: connectTo.includes(':') ? 6 : 4 }]);
          else callback(null, connectTo, connectTo.includes(':') ? 6 : 4);
        }
      : undefined;
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const send = secure ? httpsRequest : httpRequest;
      const req = send(
        target,
        {
          method: options.method ?? 'GET',
          headers,
          timeout: this.#options.timeoutMs ?? 30_000,
          ...(lookup ? { lookup } : {}),
          ...(secure && this.#options.ca ? { ca: this.#options.ca } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            options.jar?.store(res.headers['set-cookie']);
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body,
              ms: performance.now() - started,
              // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see ScanResponse.json
              json: <T>() => {
                try {
                  return JSON.parse(body) as T;
                } catch {
                  return null;
                }
              },
            });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${target.host} within ${this.#options.timeoutMs ?? 30_000} ms`)));
      req.on('error', reject);
      if (options.body !== undefined) req.write(options.body);
      req.end();
    });
  }
}
