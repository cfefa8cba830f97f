import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { bytesPulledWhileStalled } from '../../../test/helpers/streams.ts';
import { constants as zlib, createZstdCompress } from 'node:zlib';
import { createZstdFramesDecompress } from './zstd-frame-reader.ts';
import { createZstdFramesCompress } from './zstd-frames.ts';

async function through(input: Buffer[], ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(input),
    ...(stages as [NodeJS.ReadWriteStream]),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

/** Mixed input: runs of text (compressible) and random bytes, in pieces of odd sizes. */
function sample(bytes: number): { whole: Buffer; pieces: Buffer[] } {
  const parts: Buffer[] = [];
  for (let made = 0, i = 0; made < bytes; i++) {
    const size = Math.min(bytes - made, [1, 999, 65_536, 300_001][i % 4] as number);
    parts.push(i % 3 === 0 ? randomBytes(size) : Buffer.from(`row ${i} `.repeat(size).slice(0, size)));
    made += size;
  }
  return { whole: Buffer.concat(parts), pieces: parts };
}

test('frames come out in input order and decompress as one stream, here and with the zstd CLI', async () => {
  const { whole, pieces } = sample(3 * 1024 * 1024 + 17);
  // Small frames: many of them, compressed several at a time, finishing out of order.
  const compressed = await through(pieces, createZstdFramesCompress({ level: 3, frameBytes: 100_000, concurrency: 4 }));
  assert.ok(compressed.length < whole.length);
  assert.deepEqual(await through([compressed], createZstdFramesDecompress()), whole);
  const cli = spawnSync('zstd', ['-d', '-c', '-q'], { input: compressed, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(cli.status, 0, cli.stderr.toString());
  assert.deepEqual(cli.stdout, whole);
});

test('the empty input is one valid empty frame, and a frame-sized input is one frame', async () => {
  const empty = await through([], createZstdFramesCompress({ level: 1 }));
  assert.ok(empty.length > 0);
  assert.equal((await through([empty], createZstdFramesDecompress())).length, 0);
  const exact = randomBytes(200_000);
  const one = await through([exact], createZstdFramesCompress({ level: 1, frameBytes: 200_000 }));
  assert.equal(one.readUInt32LE(0), 0xfd2fb528);
  assert.equal(one.indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 4), -1, 'no second frame');
  assert.deepEqual(await through([one], createZstdFramesDecompress()), exact);
});

test('each frame carries its checksum: a flipped bit or a cut fails decompression', async () => {
  const { whole, pieces } = sample(600_000);
  const compressed = await through(pieces, createZstdFramesCompress({ level: 3, frameBytes: 200_000 }));
  const altered = Buffer.from(compressed);
  altered[altered.length - 2] = (altered[altered.length - 2] as number) ^ 0x01;
  await assert.rejects(through([altered], createZstdFramesDecompress()), /corrupt/);
  for (const cut of [3, 100, compressed.length - 1]) await assert.rejects(through([compressed.subarray(0, cut)], createZstdFramesDecompress()), /corrupt/, `cut at ${cut}`);
  await assert.rejects(through([Buffer.from('not zstd at all')], createZstdFramesDecompress()), /not a zstd frame/);
  assert.deepEqual(await through([compressed], createZstdFramesDecompress()), whole);
});

test('memory stays bounded: a consumer that stops reading stops the producer after a few frames', async () => {
  const produced = await bytesPulledWhileStalled(createZstdFramesCompress({ level: 1, frameBytes: 1024 * 1024, concurrency: 2 }));
  // The block being filled, two frames under way and one waiting to be read.
  assert.ok(produced <= 8 * 1024 * 1024, `${produced / 1024 / 1024} MiB pulled from the source`);
});

test('a stream of one large frame without a size (as written before frames) decompresses as a stream', async () => {
  const { whole, pieces } = sample(20 * 1024 * 1024);
  const single = await through(pieces, createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: 1, [zlib.ZSTD_c_checksumFlag]: 1 } }));
  const small = await through([Buffer.from('tail')], createZstdCompress());
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(5, 4);
  // Fed in small pieces, so headers and frames straddle writes.
  const input = Buffer.concat([single, skippable, small]);
  const fed: Buffer[] = [];
  for (let at = 0; at < input.length; at += 65_536) fed.push(input.subarray(at, at + 65_536));
  assert.deepEqual(await through(fed, createZstdFramesDecompress()), Buffer.concat([whole, Buffer.from('tail')]));
  // Corrupted inside that large frame: an error, not a crash and not a short success.
  const altered = Buffer.from(single);
  altered[Math.floor(altered.length / 2)] = (altered[Math.floor(altered.length / 2)] as number) ^ 0xff;
  await assert.rejects(through([altered], createZstdFramesDecompress()), /corrupt/);
});
