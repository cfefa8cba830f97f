/**
 * The global cap on open tenant connections (tenant-pools.ts): a slot is taken before a connection
 * opens and given back once PostgreSQL has let it go.
 */

/** A counting semaphore with FIFO waiters and timeouts. */
export class ConnectionSlots {
  readonly capacity: number;
  #used = 0;
  #waiters: { grant: () => void }[] = [];
  #onDrained: (() => void)[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get used(): number {
    return this.#used;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot if one is free right now; returns its release function or null. */
  tryAcquire(): (() => void) | null {
    if (this.#used >= this.capacity) return null;
    this.#used++;
    return this.#releaser();
  }

  /** Waits up to `timeoutMs` for a slot; rejects with `onTimeout()` if none frees up. */
  acquire(timeoutMs: number, onTimeout: () => Error): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.#releaser());
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(onTimeout());
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Resolves once no slot is in use (true), or after `timeoutMs` with slots still out (false). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.#used === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#onDrained = this.#onDrained.filter((d) => d !== done);
        resolve(false);
      }, timeoutMs);
      this.#onDrained.push(done);
    });
  }

  /** A release function that works once: a slot must never be returned twice. */
  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the first waiter, so `used` never dips below what is open.
      const next = this.#waiters.shift();
      if (next) {
        next.grant();
        return;
      }
      this.#used--;
      if (this.#used === 0) {
        const drained = this.#onDrained;
        this.#onDrained = [];
        for (const done of drained) done();
      }
    };
  }
}
