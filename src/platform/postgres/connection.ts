/** Where a PostgreSQL cluster is and how to reach it as its administrator. */
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

/** A libpq connection URL; contains the password, so print it only when asked to. */
export function connectionUrl(target: ConnectionTarget, database: string, as?: { user: string; password: string }): string {
  const user = encodeURIComponent(as?.user ?? target.user);
  const password = encodeURIComponent(as?.password ?? target.password);
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `postgresql://${user}:${password}@${host}:${target.port}/${encodeURIComponent(database)}`;
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
    ...(target.ssl ? { ssl: { rejectUnauthorized: false } } : {}),
    ...(target.connectTimeoutMs ? { connectionTimeoutMillis: target.connectTimeoutMs } : {}),
    // A primary that vanishes without closing its sockets (a host gone from the network) is noticed.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
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
