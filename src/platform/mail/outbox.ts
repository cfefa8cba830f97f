/**
 * The durable outbox in the control database (`mail_outbox`) and the worker that empties it.
 *
 * A message is queued with `enqueueMail`, inside the caller's transaction if it has one, so the
 * request that causes mail never waits on SMTP and the mail goes out exactly when the change that
 * caused it commits. Workers on any number of hosts claim one due message at a time with
 * `FOR UPDATE SKIP LOCKED`, so no two claim the same one; a claim is a lease, so a message held by
 * a worker that died is taken over when the lease ends. Delivery is therefore at least once: only a
 * crash between the server's acceptance and our record of it can repeat a message.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig, type ConnectionTarget } from '../postgres/connection.ts';
import { assertValidMessage, recipientDomain, type MailKind, type MailMessage } from './message.ts';
import type { MailTransport } from './transport.ts';

/** NOTIFY channel that wakes the workers when a message is queued. */
export const MAIL_QUEUED_CHANNEL = 'taskflow_mail_queued';

/** Anything that runs queries: a pool, or a client (possibly inside a transaction). */
export type Queryable = Pick<pg.Pool, 'query'> | pg.ClientBase;

export type OutboxStatus = 'queued' | 'sending' | 'sent' | 'failed';

/**
 * Queues a message and returns its outbox id. With a client inside a transaction, the message (and
 * the wake-up of the workers) takes effect only if that transaction commits.
 */
export async function enqueueMail(db: Queryable, message: MailMessage): Promise<string> {
  assertValidMessage(message);
  const res = await db.query<{ id: string }>(
    `WITH queued AS (
       INSERT INTO mail_outbox (kind, tenant_id, recipient, subject, body_text, body_html)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
     )
     SELECT id::text, pg_notify($7, '') FROM queued`,
    [message.kind, message.tenantId ?? null, message.to, message.subject, message.text, message.html ?? null, MAIL_QUEUED_CHANNEL],
  );
  const id = res.rows[0]?.id;
  if (id === undefined) throw new Error('mail_outbox insert returned no id');
  return id;
}

/** Delay before the next attempt after attempt `attempt` failed: doubling from `baseMs`, at most `maxMs`. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)), maxMs);
}

export interface OutboxProblem {
  id: string;
  kind: string;
  to: string;
  tenantId: string | null;
  attempts: number;
  error: string | null;
  createdAt: Date;
  /** When it failed for good, or when it is tried next. */
  at: Date;
}

export interface OutboxSummary {
  counts: Record<OutboxStatus, number>;
  /** Messages that failed for good, newest first. */
  failed: OutboxProblem[];
  /** Queued messages that have failed before and wait for their next attempt. */
  retrying: OutboxProblem[];
}

interface ProblemRow {
  id: string;
  kind: string;
  recipient: string;
  tenant_id: string | null;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  at: Date;
}

function problemFrom(row: ProblemRow): OutboxProblem {
  return { id: row.id, kind: row.kind, to: row.recipient, tenantId: row.tenant_id, attempts: row.attempts, error: row.last_error, createdAt: row.created_at, at: row.at };
}

/** Counts by status, with the failed and retrying messages (at most `limit` of each) and their errors. */
export async function outboxSummary(db: Queryable, limit = 50): Promise<OutboxSummary> {
  const counts: Record<OutboxStatus, number> = { queued: 0, sending: 0, sent: 0, failed: 0 };
  const byStatus = await db.query<{ status: OutboxStatus; n: number }>('SELECT status, count(*)::int AS n FROM mail_outbox GROUP BY status');
  for (const row of byStatus.rows) counts[row.status] = row.n;
  const columns = 'id::text, kind, recipient, tenant_id, attempts, last_error, created_at';
  const failed = await db.query<ProblemRow>(
    `SELECT ${columns}, finished_at AS at FROM mail_outbox WHERE status = 'failed' ORDER BY finished_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  const retrying = await db.query<ProblemRow>(
    `SELECT ${columns}, next_attempt_at AS at FROM mail_outbox WHERE status = 'queued' AND attempts > 0 ORDER BY next_attempt_at, id LIMIT $1`,
    [limit],
  );
  return { counts, failed: failed.rows.map(problemFrom), retrying: retrying.rows.map(problemFrom) };
}

/** Deletes sent and failed messages finished more than `days` days ago; returns how many. */
export async function pruneOutbox(db: Queryable, days: number): Promise<number> {
  const res = await db.query("DELETE FROM mail_outbox WHERE status IN ('sent', 'failed') AND finished_at < now() - make_interval(days => $1)", [days]);
  return res.rowCount ?? 0;
}

interface ClaimedRow {
  id: string;
  kind: MailKind;
  tenant_id: string | null;
  recipient: string;
  subject: string;
  body_text: string;
  body_html: string | null;
  attempts: number;
}

export interface MailWorkerOptions {
  /** Pool on the control database. */
  control: Queryable;
  /** Where the control database is, for the LISTEN connection; without it the worker only polls. */
  target?: ConnectionTarget;
  transport: MailTransport;
  log: Logger;
  /** How often due messages are looked for without a notification (default 5 s). */
  pollIntervalMs?: number;
  /** Attempts before a message is marked failed (default 8: retries over about an hour). */
  maxAttempts?: number;
  /** First retry delay, doubled each time (default 30 s), up to retryMaxMs (default 1 h). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long a claim holds; far longer than one SMTP delivery can take (default 10 min). */
  claimMs?: number;
  /** Sent and failed messages are deleted after this many days (default 30). */
  retentionDays?: number;
  /** How long stop() waits for a delivery in progress (default 15 s). */
  stopTimeoutMs?: number;
}

export interface PassResult {
  sent: number;
  retrying: number;
  failed: number;
}

const PRUNE_EVERY_MS = 3_600_000;

/** Delivers queued mail: woken by NOTIFY and by a timer; start() once, stop() on shutdown. */
export class MailWorker {
  /** Identifies this worker's claims. */
  readonly id = randomUUID();
  readonly #o: Required<Omit<MailWorkerOptions, 'target'>> & { target?: ConnectionTarget };
  #started = false;
  #stopping = false;
  #timer: NodeJS.Timeout | null = null;
  #listener: pg.Client | null = null;
  #listening = false;
  #current: Promise<void> | null = null;
  #again = false;
  #lastPrune = 0;
  #failing = false;

  constructor(options: MailWorkerOptions) {
    this.#o = {
      pollIntervalMs: 5_000,
      maxAttempts: 8,
      retryBaseMs: 30_000,
      retryMaxMs: 3_600_000,
      claimMs: 600_000,
      retentionDays: 30,
      stopTimeoutMs: 15_000,
      ...options,
    };
  }

  /** Whether queue notifications arrive; without them the worker still polls. */
  get listening(): boolean {
    return this.#listening;
  }

  /** Starts listening and polling, and delivers whatever is already due. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#listen();
    this.#timer = setInterval(() => {
      if (!this.#listening) void this.#listen();
      this.#wake();
    }, this.#o.pollIntervalMs);
    this.#timer.unref();
    this.#wake();
  }

  /** Stops taking new messages and waits (up to stopTimeoutMs) for the delivery in progress. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#listening = false;
    const listener = this.#listener;
    this.#listener = null;
    await listener?.end().catch(() => undefined);
    const current = this.#current;
    if (current) {
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([current, new Promise((resolve) => (timeout = setTimeout(resolve, this.#o.stopTimeoutMs)))]);
      clearTimeout(timeout);
    }
  }

  /** One pass: delivers messages until none is due. Safe beside the background passes and other workers. */
  async runOnce(): Promise<PassResult> {
    const result: PassResult = { sent: 0, retrying: 0, failed: 0 };
    await this.#failAbandoned();
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now();
      const pruned = await pruneOutbox(this.#o.control, this.#o.retentionDays);
      if (pruned > 0) this.#o.log.info({ pruned }, 'old outbox entries deleted');
    }
    while (!this.#stopping) {
      const row = await this.#claim();
      if (!row) break;
      result[await this.#deliver(row)]++;
    }
    return result;
  }

  #wake(): void {
    if (this.#stopping) return;
    if (this.#current) {
      this.#again = true;
      return;
    }
    this.#current = this.runOnce()
      .then(() => {
        if (this.#failing) this.#o.log.info('mail outbox reachable again');
        this.#failing = false;
      })
      .catch((err: unknown) => {
        // Said once per outage; the timer keeps trying.
        if (!this.#failing) this.#o.log.warn({ err: (err as Error).message }, 'mail outbox pass failed; retrying');
        this.#failing = true;
      })
      .finally(() => {
        this.#current = null;
        if (this.#again) {
          this.#again = false;
          this.#wake();
        }
      });
  }

  async #listen(): Promise<void> {
    const target = this.#o.target;
    if (!target || this.#stopping || this.#listener) return;
    const client = new pg.Client({ ...clientConfig(target, CONTROL_DB), application_name: 'taskflow-mail-worker' });
    this.#listener = client;
    const drop = () => {
      if (this.#listener !== client) return;
      this.#listener = null;
      this.#listening = false;
      client.end().catch(() => undefined);
    };
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', (msg) => {
      if (msg.channel === MAIL_QUEUED_CHANNEL) this.#wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(MAIL_QUEUED_CHANNEL)}`);
    } catch {
      drop();
      return;
    }
    if (this.#listener !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#listening = true;
    // Whatever was queued while nobody listened.
    this.#wake();
  }

  async #claim(): Promise<ClaimedRow | null> {
    const res = await this.#o.control.query<ClaimedRow>(
      `UPDATE mail_outbox m
       SET status = 'sending', attempts = m.attempts + 1, claimed_by = $1, claimed_until = now() + make_interval(secs => $2::double precision / 1000)
       WHERE m.id = (
         SELECT id FROM mail_outbox
         WHERE (status = 'queued' AND next_attempt_at <= now())
            OR (status = 'sending' AND claimed_until < now() AND attempts < $3)
         ORDER BY next_attempt_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED
       )
       RETURNING m.id::text, m.kind, m.tenant_id, m.recipient, m.subject, m.body_text, m.body_html, m.attempts`,
      [this.id, this.#o.claimMs, this.#o.maxAttempts],
    );
    return res.rows[0] ?? null;
  }

  /** Messages whose worker died during their last allowed attempt fail for good. */
  async #failAbandoned(): Promise<void> {
    const res = await this.#o.control.query<{ id: string; kind: string }>(
      `UPDATE mail_outbox
       SET status = 'failed', finished_at = now(), body_text = NULL, body_html = NULL, claimed_by = NULL, claimed_until = NULL,
           last_error = concat_ws('; ', last_error, 'the worker delivering the last attempt stopped before it finished')
       WHERE status = 'sending' AND claimed_until < now() AND attempts >= $1
       RETURNING id::text, kind`,
      [this.#o.maxAttempts],
    );
    for (const row of res.rows) this.#o.log.error({ mailId: row.id, kind: row.kind }, 'mail could not be delivered; gave up');
  }

  async #deliver(row: ClaimedRow): Promise<keyof PassResult> {
    const { transport, log, maxAttempts } = this.#o;
    const fields = { mailId: row.id, kind: row.kind, recipientDomain: recipientDomain(row.recipient), tenantId: row.tenant_id, attempt: row.attempts };
    const message: MailMessage = {
      to: row.recipient,
      subject: row.subject,
      text: row.body_text,
      kind: row.kind,
      ...(row.body_html === null ? {} : { html: row.body_html }),
      ...(row.tenant_id === null ? {} : { tenantId: row.tenant_id }),
    };
    let messageId: string;
    try {
      messageId = (await transport.send(message)).messageId;
    } catch (err) {
      const failure = transport.describeError(err);
      if (failure.permanent || row.attempts >= maxAttempts) {
        await this.#finish(row, 'failed', { error: failure.reason });
        log.error({ ...fields, error: failure.reason }, 'mail could not be delivered; gave up');
        return 'failed';
      }
      const delayMs = retryDelayMs(row.attempts, this.#o.retryBaseMs, this.#o.retryMaxMs);
      await this.#o.control.query(
        `UPDATE mail_outbox SET status = 'queued', next_attempt_at = now() + make_interval(secs => $3::double precision / 1000),
           last_error = $4, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = 'sending'`,
        [row.id, this.id, delayMs, failure.reason],
      );
      log.warn({ ...fields, error: failure.reason, retryInMs: delayMs }, 'mail delivery failed; will retry');
      return 'retrying';
    }
    await this.#finish(row, 'sent', { messageId });
    log.info(fields, 'mail sent');
    return 'sent';
  }

  /** Records the end of a message and clears its body, which may hold single-use links. */
  async #finish(row: ClaimedRow, status: 'sent' | 'failed', detail: { messageId?: string; error?: string }): Promise<void> {
    await this.#o.control.query(
      `UPDATE mail_outbox
       SET status = $3, finished_at = now(), body_text = NULL, body_html = NULL, claimed_by = NULL, claimed_until = NULL,
           message_id = $4, last_error = $5
       WHERE id = $1 AND claimed_by = $2 AND status = 'sending'`,
      [row.id, this.id, status, detail.messageId ?? null, detail.error ?? null],
    );
  }
}
