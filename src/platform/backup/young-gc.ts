/**
 * A young-generation garbage collection after every so many age batches, on the thread that calls
 * it. A batch's 1 MiB of shared memory (age-payload.ts) is freed only by a collection on every
 * thread that saw it, and the threads that handle batches allocate so little else that V8 would
 * collect rarely: they held hundreds of MiB of batches the stream had long handed on, so new batches
 * kept taking fresh memory from the kernel, a page fault per 4 KiB (a third to a half of the time
 * of such rounds, bench/README.md). A young-generation collection takes about 0.3 ms; one every
 * 16 batches frees them while they are still young, and the C library gives the memory to the next
 * batches (native/age-aead.c keeps it from being returned to the kernel).
 *
 * `gc` is exposed to a context of its own, not to the application's globals; where V8 refuses,
 * batches are still freed, only later.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const BATCHES_PER_COLLECTION = 16;

/** The collection, made ready when first due (not at import: most processes never back up). */
let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options: { type: 'minor'; execution: 'sync' }) => void;
    collect = () => {
      gc({ type: 'minor', execution: 'sync' });
    };
  } catch {
    collect = null;
  }
  return collect;
}

let batches = 0;

/** Counts one batch handled on this thread; collects the young generation every BATCHES_PER_COLLECTION. */
export function batchHandled(): void {
  if (++batches % BATCHES_PER_COLLECTION === 0) collector()?.();
}
