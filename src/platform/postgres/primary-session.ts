/**
 * What a connection learns about the server it reached, and what the pools need of the primary
 * locator (platform/replication/primary-locator.ts).
 *
 * - Whether the server is a primary: PostgreSQL 14 and later report `in_hot_standby` when a session
 *   starts (and when it changes), so a node that is in recovery is noticed without a round trip.
 * - Whether a COMMIT came back without its synchronous standby's confirmation. When a commit's wait
 *   for the standby is cancelled (statement_timeout, pg_cancel_backend), PostgreSQL keeps the commit
 *   locally, answers COMMIT as if all were well, and says so only in a WARNING from
 *   SyncRepWaitForLSN. In synchronous mode such a change would be lost if the primary failed now,
 *   so it must not be acknowledged as a success.
 * - How to cancel what the session is doing, as libpq's PQcancel does: a COMMIT waits for its
 *   synchronous standby however long that takes (statement_timeout does not apply to it), and a
 *   cancel is the one way to end the wait without ending the session.
 */
import { connect } from 'node:net';
import type pg from 'pg';
import type { AppError } from '../../errors.ts';
import { isConnectionError, isReadOnlyError, type ConnectionTarget } from './connection.ts';

/** What the pools need of the primary locator. */
export interface PrimaryGate {
  /** Host and port read at each use: the current primary's. */
  readonly target: ConnectionTarget;
  /** Bumped whenever the primary changes; a connection of an older epoch leads to the old primary. */
  readonly epoch: number;
  /** Retry-After of the 503s about the primary (it is usually back within seconds). */
  readonly retryAfterSeconds: number;
  /** Whether a primary is known; while not, connections are refused without being tried. */
  available(): boolean;
  /** The 503 primary-unavailable (inFlight: the connection broke during the request). */
  unavailable(cause?: unknown, inFlight?: boolean): AppError;
  /** Looks for the primary again (a connection failed, or reached a read-only node). */
  refresh(why: string): unknown;
  onChange(listener: () => void): () => void;
}

/** The server a connection reached is not a primary (a standby, or a primary being demoted). */
export class NotPrimaryError extends Error {
  override name = 'NotPrimaryError';
  readonly code = 'TASKFLOW_NOT_PRIMARY';
}

export interface SessionWatch {
  /** `in_hot_standby` as the server last reported it; null when it never did (before PostgreSQL 14, a proxy). */
  readonly inHotStandby: boolean | null;
  /** Whether a COMMIT returned without its synchronous standby's confirmation since the last call; clears it. */
  takeUnconfirmedCommit(): boolean;
  /** Asks the server to cancel the statement the session runs now (nothing happens if it is idle). */
  cancel(): void;
}

/** PostgreSQL's CancelRequest code (protocol 3.0). */
const CANCEL_REQUEST_CODE = 80877102;

/** Starts watching a client that will connect to `server`; call before it connects. */
export function watchSession(client: pg.Client, server: { host: string; port: number }): SessionWatch {
  let inHotStandby: boolean | null = null;
  let unconfirmed = false;
  let key: { pid: number; secret: number } | null = null;
  client.connection.on('parameterStatus', (msg: { parameterName?: string; parameterValue?: string }) => {
    if (msg.parameterName === 'in_hot_standby') inHotStandby = msg.parameterValue === 'on';
  });
  client.connection.on('backendKeyData', (msg: { processID: number; secretKey: number }) => {
    key = { pid: msg.processID, secret: msg.secretKey };
  });
  client.on('notice', (notice) => {
    // The routine name is not translated, unlike the message (lc_messages).
    if (notice.routine === 'SyncRepWaitForLSN') unconfirmed = true;
  });
  return {
    get inHotStandby() {
      return inHotStandby;
    },
    takeUnconfirmedCommit() {
      const was = unconfirmed;
      unconfirmed = false;
      return was;
    },
    cancel() {
      if (key) sendCancelRequest(server, key);
    },
  };
}

/** A CancelRequest on a connection of its own; it needs no authentication, only the session's key. */
function sendCancelRequest(server: { host: string; port: number }, key: { pid: number; secret: number }): void {
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  message.writeInt32BE(key.pid, 8);
  message.writeInt32BE(key.secret, 12);
  const socket = connect({ host: server.host, port: server.port });
  socket.setTimeout(5_000, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.end(message));
}

/** Throws NotPrimaryError unless the connected server accepts writes. */
export async function assertPrimary(client: pg.ClientBase, watch: SessionWatch): Promise<void> {
  let standby = watch.inHotStandby;
  if (standby === null) {
    const res = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    standby = res.rows[0]?.r ?? true;
  }
  if (standby) throw new NotPrimaryError('the database server reached is read-only (a standby), not the primary');
}

/** Whether an error means the primary is gone or is no primary any more (as opposed to a failed statement). */
export function isPrimaryLoss(err: unknown): boolean {
  return isConnectionError(err) || isReadOnlyError(err) || err instanceof NotPrimaryError;
}
