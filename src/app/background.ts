/** Work a request leaves for after its reply; failures are logged, and shutdown waits for all of it. */
import type { Logger } from 'pino';

export class BackgroundWork {
  readonly #running = new Set<Promise<void>>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  run(name: string, work: () => Promise<void>): void {
    const task = Promise.resolve()
      .then(work)
      .catch((err: unknown) => {
        this.#log.error({ task: name, err: err instanceof Error ? err.message : String(err) }, 'background work failed');
      })
      .finally(() => this.#running.delete(task));
    this.#running.add(task);
  }

  /** How many are still running. */
  get size(): number {
    return this.#running.size;
  }

  /** Resolves when everything started so far has finished. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running]);
  }
}
