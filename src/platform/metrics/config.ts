/** The `metrics` section of the configuration: the operator metrics listener (docs/operations.md, "Monitoring"). */
import { isIP } from 'node:net';
import Type from 'typebox';

/** Not 9187 (postgres_exporter's, often on the same machine) nor 9100 (node_exporter's). */
export const DEFAULT_METRICS_PORT = 9469;

export const MetricsConfigSchema = Type.Object(
  {
    /** Off by default: the listener is for the operator's Prometheus, not for tenants. */
    enabled: Type.Boolean({ default: false }),
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /** 0 picks a free port (tests). */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: DEFAULT_METRICS_PORT }),
    /** A file only its owner can read, holding the token scrapers send as `Authorization: Bearer`; needed beyond loopback. */
    tokenFile: Type.Optional(Type.String({ minLength: 1 })),
    /** How long one probe of the databases (cluster status, open alerts) is reused by later scrapes. */
    probeCacheMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 5_000 }),
    /** How long a scrape waits for a probe under way before answering with the last one. */
    probeWaitMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000 }),
  },
  { additionalProperties: false, default: {} },
);

export type MetricsConfig = Type.Static<typeof MetricsConfigSchema>;

/** Whether an address only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Rules that tie the metrics keys to each other and to the app's listener, each as `key: message`. */
export function metricsConfigProblems(metrics: MetricsConfig, server: { port: number; tls: { mode: string; port: number } }): string[] {
  if (!metrics.enabled) return [];
  const problems: string[] = [];
  if (!isLoopbackHost(metrics.host) && !metrics.tokenFile) {
    problems.push(`metrics.tokenFile: required when metrics.host (${metrics.host}) is not a loopback address, or anyone who reaches it reads the metrics`);
  }
  const appPorts = [server.port, ...(server.tls.mode === 'self-signed' || server.tls.mode === 'files' ? [server.tls.port] : [])];
  if (metrics.port !== 0 && appPorts.includes(metrics.port)) {
    problems.push(`metrics.port: ${metrics.port} is a port of the app's own listener; the metrics listener needs one of its own`);
  }
  return problems;
}
