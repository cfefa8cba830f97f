/**
 * One shared SFTP session per repository: a single ssh connection serves concurrent operations
 * (SFTP multiplexes requests by id) and stays open a moment after the last one, because the
 * handshake costs more than most operations. A session found dead is replaced once per lease.
 */
import type { SftpSession } from './session.ts';

/** How long an unused connection stays open. */
export const IDLE_MS = 2_000;

interface Shared {
  session: Promise<SftpSession>;
  users: number;
  timer: NodeJS.Timeout | null;
}

export interface SessionLease {
  session: SftpSession;
  /** Hands the session back; call exactly once. */
  release: () => void;
}

export class SftpSessionPool {
  readonly #open: () => Promise<SftpSession>;
  readonly #idleMs: number;
  #shared: Shared | null = null;

  constructor(open: () => Promise<SftpSession>, idleMs = IDLE_MS) {
    this.#open = open;
    this.#idleMs = idleMs;
  }

  /** The shared session, connecting when there is none or it died; rejects when connecting fails. */
  async lease(): Promise<SessionLease> {
    for (let attempt = 0; ; attempt++) {
      if (!this.#shared) {
        const created: Shared = { session: this.#open(), users: 0, timer: null };
        // A failed connection is forgotten at once, so the next lease tries again.
        created.session.catch(() => {
          if (this.#shared === created) this.#shared = null;
        });
        this.#shared = created;
      }
      const entry = this.#shared;
      entry.users++;
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = null;
      let session: SftpSession;
      try {
        session = await entry.session;
      } catch (err) {
        entry.users--;
        throw err;
      }
      if (session.closed && attempt === 0) {
        // The connection was lost while idle (server restarted, network blip): connect afresh.
        entry.users--;
        if (this.#shared === entry) this.#shared = null;
        continue;
      }
      return {
        session,
        release: () => {
          this.#release(entry);
        },
      };
    }
  }

  /** Runs `fn` with the shared session. */
  async withSession<T>(fn: (session: SftpSession) => Promise<T>): Promise<T> {
    const { session, release } = await this.lease();
    try {
      return await fn(session);
    } finally {
      release();
    }
  }

  #release(entry: Shared): void {
    entry.users--;
    if (entry.users > 0) return;
    if (this.#shared !== entry) {
      void entry.session.then(
        (s) => s.end(),
        () => undefined,
      );
      return;
    }
    entry.timer = setTimeout(() => {
      if (entry.users > 0) return;
      if (this.#shared === entry) this.#shared = null;
      void entry.session.then(
        (s) => s.end(),
        () => undefined,
      );
    }, this.#idleMs);
  }

  /** Ends the shared session now; operations still running on it fail. */
  async close(): Promise<void> {
    const entry = this.#shared;
    this.#shared = null;
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    await entry.session.then(
      (s) => s.end(),
      () => undefined,
    );
  }
}
