/** Plain HTTP requests to a server on loopback, with any Host header (fetch cannot set Host). */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON. */
  json(): unknown;
}

export function request(options: {
  port: number;
  host: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
  /** Speak HTTPS, trusting this CA certificate (PEM) and checking the certificate names the host. */
  ca?: string;
}): Promise<HttpResponse> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { host: options.host, ...options.headers };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port: options.port, method: options.method ?? 'GET', path: options.path, headers, timeout: options.timeoutMs ?? 30_000 };
    const send = options.ca === undefined ? httpRequest : httpsRequest;
    const tls = options.ca === undefined ? {} : { ca: options.ca, servername: options.host.replace(/:\d+$/, '') };
    const req = send(
      { ...common, ...tls },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: (): unknown => JSON.parse(text) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
