/**
 * A pg.Pool that always leads to the current primary (the platform's control pool). It stays one
 * pool object, so everything holding it (resolver, tokens, alerts, the mail worker) follows a
 * failover without knowing:
 *
 * - each new connection is opened to the primary the locator names at that moment, and is refused
 *   at once (503 primary-unavailable) while it names none;
 * - a new connection is used only once the server has said it is not in recovery;
 * - when the primary changes, idle connections to the old one are let go at once and busy ones as
 *   soon as their user hands them back.
 */
import pg from 'pg';
import { clientConfig } from './connection.ts';
import { assertPrimary, isPrimaryLoss, watchSession, type PrimaryGate, type SessionWatch } from './primary-session.ts';

type ConnectCallback = ((err: Error) => void) | ((err: null, client: pg.Client) => void);

/** The error an idle connection to an old primary is retired with (pg.Pool drops a client that reports an error). */
export class PrimaryMovedError extends Error {
  override name = 'PrimaryMovedError';
}

export interface PrimaryPoolOptions {
  max: number;
  idleTimeoutMillis: number;
}

/** The pool; see the module comment. */
export function primaryPool(gate: PrimaryGate, database: string, options: PrimaryPoolOptions): pg.Pool {
  /** A failure that means the primary is gone or moved makes the locator look again at once. */
  const noticed = <E>(err: E): E => {
    if (err && isPrimaryLoss(err)) gate.refresh('a control database connection failed');
    return err;
  };
  const epochs = new WeakMap<pg.Client, number>();
  const watches = new WeakMap<object, SessionWatch>();
  const open = new Set<pg.Client>();
  const checkedOut = new Set<pg.Client>();

  class PrimaryClient extends pg.Client {
    constructor(config: pg.ClientConfig = {}) {
      // Read now, not when the pool was made: the primary of this moment. (pg.Pool keeps the
      // password as a non-enumerable property, which a spread would leave out.)
      const server = { host: gate.target.host, port: gate.target.port };
      super({ ...config, password: config.password, ...server });
      epochs.set(this, gate.epoch);
      watches.set(this, watchSession(this, server));
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ConnectCallback): void;
    override connect(callback?: ConnectCallback): Promise<pg.Client> | void {
      if (!callback) {
        if (!gate.available()) return Promise.reject(gate.unavailable());
        return super.connect().catch((err: unknown) => {
          throw noticed(err instanceof Error ? err : new Error(String(err)));
        });
      }
      const done = callback as (err: Error | null) => void;
      if (!gate.available()) {
        process.nextTick(done, gate.unavailable());
        return;
      }
      super.connect((err: Error | null) => {
        done(noticed(err));
      });
    }
  }

  const pool = new pg.Pool({
    ...clientConfig(gate.target, database),
    max: options.max,
    idleTimeoutMillis: options.idleTimeoutMillis,
    Client: PrimaryClient,
    // Run on each new connection before its first use; an error drops it and reaches the caller.
    verify: (client, done) => {
      const watch = watches.get(client);
      if (!watch) {
        done();
        return;
      }
      assertPrimary(client, watch).then(
        () => {
          done();
        },
        (err: unknown) => {
          done(noticed(err instanceof Error ? err : new Error(String(err))));
        },
      );
    },
  });

  const stale = (client: pg.Client) => epochs.get(client) !== gate.epoch;
  const retireIfIdle = (client: pg.Client) => {
    // An idle client carries the pool's own error listener, which removes it and closes it.
    if (open.has(client) && !checkedOut.has(client) && stale(client)) client.emit('error', new PrimaryMovedError('the primary moved'));
  };
  pool.on('connect', (client) => open.add(client));
  pool.on('acquire', (client) => checkedOut.add(client));
  pool.on('release', (_err, client) => {
    checkedOut.delete(client);
    // After the pool has put it back among the idle ones (or handed it straight to a waiter).
    if (stale(client)) process.nextTick(retireIfIdle, client);
  });
  pool.on('remove', (client) => {
    open.delete(client);
    checkedOut.delete(client);
  });
  gate.onChange(() => {
    for (const client of [...open]) retireIfIdle(client);
  });
  return pool;
}
