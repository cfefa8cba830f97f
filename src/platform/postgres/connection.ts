/** Where a PostgreSQL cluster is and how to reach it as its administrator. */
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { UserError } from '../../errors.ts';

export interface ConnectionTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Database named in an external URL; the admin maintenance database. */
  database?: string;
  ssl?: boolean;
  /**
   * The certificate authority the server's certificate must come from (PEM text or a file path):
   * with it, TLS with verify-full (the chain and the host's name or address). A managed node off
   * loopback carries the cluster's replication CA; without it, `ssl` encrypts without verifying.
   */
  ca?: string;
  /** How long opening a connection may take (node-postgres' default is to wait for ever). */
  connectTimeoutMs?: number;
}

/** Parses `postgres://user:pass@host:port/db`; throws a UserError naming what is wrong. */
export function parseDatabaseUrl(url: string): ConnectionTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError('databaseUrl is not a valid URL (expected postgres://USER:PASSWORD@HOST:PORT/DATABASE)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new UserError('databaseUrl must start with postgres:// or postgresql://');
  }
  if (!parsed.username) throw new UserError('databaseUrl names no user');
  const sslmode = parsed.searchParams.get('sslmode');
  return {
    host: decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, '')) || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 5432,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'postgres',
    ssl: sslmode !== null && sslmode !== 'disable',
  };
}

/**
 * libpq's TLS settings for `target`, matching clientConfig: verify-full against the CA file of a
 * managed node off loopback, encryption without verification for an external target that asks for
 * TLS, none otherwise. A CA given as PEM text cannot be named to libpq, so it gets encryption only.
 */
export function libpqTls(target: ConnectionTarget): { sslmode: 'verify-full'; sslrootcert: string } | { sslmode: 'require' } | null {
  if (target.ca && !isPem(target.ca)) return { sslmode: 'verify-full', sslrootcert: target.ca };
  return target.ssl ? { sslmode: 'require' } : null;
}

/** libpqTls as libpq's environment variables (PGSSLMODE, PGSSLROOTCERT). */
export function libpqTlsEnvironment(target: ConnectionTarget): NodeJS.ProcessEnv {
  const tls = libpqTls(target);
  if (!tls) return {};
  return 'sslrootcert' in tls ? { PGSSLMODE: tls.sslmode, PGSSLROOTCERT: tls.sslrootcert } : { PGSSLMODE: tls.sslmode };
}

/**
 * A libpq connection URL, with the TLS settings TaskFlow itself uses for the target (libpqTls);
 * contains the password, so print it only when asked to.
 */
export function connectionUrl(target: ConnectionTarget, database: string, as?: { user: string; password: string }): string {
  const user = encodeURIComponent(as?.user ?? target.user);
  const password = encodeURIComponent(as?.password ?? target.password);
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const tls = libpqTls(target);
  const query = tls ? `?${new URLSearchParams(tls).toString()}` : '';
  return `postgresql://${user}:${password}@${host}:${target.port}/${encodeURIComponent(database)}${query}`;
}

/** node-postgres client settings for one database of the target. */
export function clientConfig(target: ConnectionTarget, database: string, as?: { user: string; password: string }): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: as?.user ?? target.user,
    password: as?.password ?? target.password,
    database,
    application_name: 'taskflow',
    ...(target.ca ? { ssl: verifiedTls(target.host, target.ca) } : target.ssl ? { ssl: { rejectUnauthorized: false } } : {}),
    ...(target.connectTimeoutMs ? { connectionTimeoutMillis: target.connectTimeoutMs } : {}),
    // A primary that vanishes without closing its sockets (a host gone from the network) is noticed.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/** Whether `ca` is PEM text rather than a file path. */
export function isPem(ca: string): boolean {
  return ca.includes('-----BEGIN');
}

/**
 * TLS options for verify-full against `ca`. The identity is checked against `host` explicitly, so it
 * never depends on what node-postgres passes as servername/host to tls.connect (no SNI for an address).
 */
function verifiedTls(host: string, ca: string): ConnectionOptions {
  let pem = ca;
  if (!isPem(ca)) {
    try {
      pem = readFileSync(ca, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read the cluster's CA certificate ${ca} to verify PostgreSQL at ${host}: ${(err as Error).message}`);
    }
  }
  return { ca: pem, rejectUnauthorized: true, checkServerIdentity: (_servername, cert) => checkServerIdentity(host, cert) };
}

/** Node's codes for a server certificate that does not verify (chain or name). */
const CERTIFICATE_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Whether an error is a server certificate that did not verify. */
export function isCertificateError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && CERTIFICATE_ERROR_CODES.has(code);
}

/** Runs `fn` with a fresh admin connection to `database`, always closing it. */
export async function withAdminClient<T>(target: ConnectionTarget, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(target, database));
  client.on('error', () => {
    /* a dropped connection surfaces on the next query */
  });
  try {
    await client.connect();
  } catch (err) {
    throw databaseUnreachable(target, err);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A clear message for "PostgreSQL is not running / not reachable / refused us". */
export function databaseUnreachable(target: ConnectionTarget, err: unknown): UserError {
  const e = err as { code?: string; message?: string };
  if (e.code === 'ECONNREFUSED') {
    return new UserError(`PostgreSQL is not running at ${target.host}:${target.port} (connection refused); start it with 'taskflow start' or check databaseUrl`);
  }
  if (isCertificateError(err)) {
    const why = e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `is from the cluster's certificate authority but does not name ${target.host} (${e.message ?? e.code})` : `is not from the cluster's certificate authority (${e.code})`;
    return new UserError(`refusing PostgreSQL at ${target.host}:${target.port}: its certificate ${why}; another server may be posing as the node (docs/high-availability.md, "The replication connection")`);
  }
  if (e.code === '28P01') return new UserError(`PostgreSQL at ${target.host}:${target.port} refused the password of ${target.user}`);
  if (e.code === '3D000') return new UserError(`${e.message ?? 'database does not exist'} at ${target.host}:${target.port}; run 'taskflow start' once to create it`);
  return new UserError(`cannot connect to PostgreSQL at ${target.host}:${target.port}: ${e.message ?? String(err)}`);
}

export const { escapeIdentifier, escapeLiteral } = pg;

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', '57P01', '57P02', '57P03']);

/** Whether an error means the connection itself is gone (as opposed to a failed statement). */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || code.startsWith('08'))) return true;
  // node-postgres' words for a connection that failed earlier, or was closed, when it is used again.
  return typeof message === 'string' && /^Connection terminated|is not queryable$/.test(message);
}

/** Whether a statement failed because the server it ran on is (now) read-only: a standby, or a demoted primary. */
export function isReadOnlyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '25006';
}
