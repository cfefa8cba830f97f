/**
 * A client that creates tasks over real HTTP as fast as the server answers, and records every
 * answer: which writes were acknowledged (2xx), what the refusals said (status, problem code,
 * Retry-After) and how long each took. The failover suites check that no acknowledged write is
 * lost and that refusals came fast.
 */
import { Agent, request } from 'node:http';

export interface WriteOutcome {
  title: string;
  status: number;
  code: string | null;
  retryAfter: string | null;
  contentType: string | null;
  /** performance.now() when the request was sent and when its answer (or failure) came. */
  sentAt: number;
  doneAt: number;
  error: string | null;
}

export interface HttpWriter {
  readonly outcomes: WriteOutcome[];
  /** Titles of the writes answered 2xx. */
  acknowledged(): string[];
  /** Waits until `count` writes sent after `since` were acknowledged. */
  waitForAcknowledged(count: number, since: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export interface HttpWriterOptions {
  port: number;
  /** The tenant's host name (the Host header). */
  host: string;
  token: string;
  projectId: string;
  /** Requests in flight at once. */
  concurrency?: number;
  /** A request not answered within this is recorded as an error (a hang). */
  requestTimeoutMs?: number;
  prefix?: string;
}

function post(agent: Agent, o: HttpWriterOptions, title: string): Promise<WriteOutcome> {
  const sentAt = performance.now();
  const body = JSON.stringify({ title });
  return new Promise((resolve) => {
    const done = (status: number, text: string, headers: Record<string, string | string[] | undefined>, error: string | null) => {
      let code: string | null = null;
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? null;
      } catch {
        /* not JSON */
      }
      const header = (name: string) => {
        const v = headers[name];
        return typeof v === 'string' ? v : null;
      };
      resolve({ title, status, code, retryAfter: header('retry-after'), contentType: header('content-type'), sentAt, doneAt: performance.now(), error });
    };
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port: o.port,
        method: 'POST',
        path: `/api/projects/${o.projectId}/tasks`,
        headers: { host: o.host, authorization: `Bearer ${o.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: o.requestTimeoutMs ?? 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          done(res.statusCode ?? 0, text, res.headers, null);
        });
        res.on('error', (err) => {
          done(0, text, res.headers, err.message);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', (err) => {
      done(0, '', {}, err.message);
    });
    req.end(body);
  });
}

/** Starts writing at once. */
export function startHttpWriter(options: HttpWriterOptions): HttpWriter {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency ?? 2 });
  const outcomes: WriteOutcome[] = [];
  let n = 0;
  let stopping = false;
  const loop = async () => {
    while (!stopping) {
      const outcome = await post(agent, options, `${options.prefix ?? 'w'}-${n++}`);
      outcomes.push(outcome);
      // A refused write is retried after a short pause, not after Retry-After: the suites measure
      // how soon writes succeed again, and a tight loop of refusals would only load the machine.
      if (outcome.status < 200 || outcome.status >= 300) await new Promise((r) => setTimeout(r, 50));
    }
  };
  const loops = Array.from({ length: options.concurrency ?? 2 }, loop);
  return {
    outcomes,
    acknowledged: () => outcomes.filter((o) => o.status >= 200 && o.status < 300).map((o) => o.title),
    async waitForAcknowledged(count, since, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (outcomes.filter((o) => o.sentAt >= since && o.status >= 200 && o.status < 300).length < count) {
        if (performance.now() > deadline) {
          const last = outcomes.at(-1);
          throw new Error(`fewer than ${count} writes acknowledged in ${timeoutMs} ms; the last answer: ${last ? `${last.status} ${last.code ?? last.error ?? ''}` : 'none'}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

export interface FailoverFigures {
  /** How long before `killedAt` the last write was acknowledged. */
  lastAckBeforeMs: number;
  /** From `killedAt` to the first acknowledgement of a write sent after it. */
  firstAckAfterMs: number;
  /** From the last acknowledgement before `killedAt` to the first of a write sent after it. */
  gapMs: number;
  /** The longest time without any acknowledgement, from `killedAt` on (a switchover's pause in writes). */
  longestPauseMs: number;
  refused: number;
  slowestRefusalMs: number;
}

const acked = (o: WriteOutcome) => o.status >= 200 && o.status < 300;

/** What the clients saw around a failover that began (the primary was killed) at `killedAt`. */
export function failoverFigures(outcomes: WriteOutcome[], killedAt: number): FailoverFigures {
  const before = outcomes.filter((o) => acked(o) && o.doneAt <= killedAt).map((o) => o.doneAt);
  const after = outcomes.filter((o) => acked(o) && o.sentAt >= killedAt).map((o) => o.doneAt);
  const refusals = outcomes.filter((o) => !acked(o) && o.sentAt >= killedAt - 1000);
  const lastBefore = before.length > 0 ? Math.max(...before) : killedAt;
  const firstAfter = after.length > 0 ? Math.min(...after) : NaN;
  const ackTimes = outcomes.filter((o) => acked(o) && o.doneAt >= lastBefore).map((o) => o.doneAt).sort((x, y) => x - y);
  let longestPause = 0;
  for (let i = 1; i < ackTimes.length; i++) longestPause = Math.max(longestPause, (ackTimes[i] ?? 0) - (ackTimes[i - 1] ?? 0));
  return {
    lastAckBeforeMs: Math.round(killedAt - lastBefore),
    longestPauseMs: Math.round(longestPause),
    firstAckAfterMs: Math.round(firstAfter - killedAt),
    gapMs: Math.round(firstAfter - lastBefore),
    refused: refusals.length,
    slowestRefusalMs: Math.round(Math.max(0, ...refusals.map((o) => o.doneAt - o.sentAt))),
  };
}
