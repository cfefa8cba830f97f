import { randomBytes } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';

/**
 * Feeds `stream` random MiB after MiB while nobody reads its output, and returns how many bytes
 * it pulled before backpressure stopped it: what a stream buffers when its consumer stalls.
 */
export async function bytesPulledWhileStalled(stream: Transform, waitMs = 1000): Promise<number> {
  let produced = 0;
  const source = Readable.from(
    (function* () {
      for (;;) {
        produced += 1024 * 1024;
        yield randomBytes(1024 * 1024);
      }
    })(),
  );
  source.pipe(stream);
  stream.once('readable', () => undefined);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  source.unpipe(stream);
  source.destroy();
  stream.destroy();
  return produced;
}
