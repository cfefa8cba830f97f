/**
 * Results of work started in order and finished in any order (thread-pool jobs), handed on in the
 * order started, with a bound on how many are under way. The first failure stops the hand-on and
 * is thrown to whoever waits next.
 */
import type { TransformCallback } from 'node:stream';

/**
 * Calls a Transform's callback once `work` (a step that queued its output here) settled: with no
 * argument when it resolved, with its error when it rejected.
 */
export function settle(callback: TransformCallback, work: Promise<void>): void {
  work.then(() => {
    callback();
  }, callback);
}
interface Slot<T> {
  done: boolean;
  value?: T;
  error?: Error;
}

export class OrderedResults<T> {
  readonly #emit: (value: T) => void;
  readonly #slots: Slot<T>[] = [];
  #failure: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(emit: (value: T) => void) {
    this.#emit = emit;
  }

  /** Reserves the next place in order; call the returned function once with the work's outcome. */
  start(): (error: Error | null, value?: T) => void {
    const slot: Slot<T> = { done: false };
    this.#slots.push(slot);
    return (error, value) => {
      slot.done = true;
      if (error) slot.error = error;
      else if (value !== undefined) slot.value = value;
      this.#handOn();
    };
  }

  #handOn(): void {
    while (this.#slots[0]?.done && this.#failure === null) {
      const head = this.#slots.shift() as Slot<T>;
      if (head.error) this.#failure = head.error;
      else if (head.value !== undefined) this.#emit(head.value);
    }
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Waits until at most `pending` are under way; throws the first failure. */
  async drainTo(pending: number): Promise<void> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      if (this.#slots.length <= pending) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}
