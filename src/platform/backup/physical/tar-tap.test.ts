import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { TarTap, tarNumber } from './tar-tap.ts';

/** A tar made by GNU tar from a small tree, in the format asked for. */
function makeTar(format: 'gnu' | 'ustar' | 'posix'): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'tartap-'));
  try {
    // Longer than ustar's 100-byte name field, in components it can split into its prefix.
    const deep = join(dir, 'tree', 'base', 'y'.repeat(60), 'z'.repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(dir, 'tree', 'backup_label'), 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
    writeFileSync(join(deep, 'big'), Buffer.alloc(70_000, 7));
    writeFileSync(join(dir, 'tree', 'backup_manifest'), JSON.stringify({ Files: [] }));
    const out = spawnSync('tar', ['-c', `--format=${format}`, '-f', '-', '-C', join(dir, 'tree'), 'backup_label', 'base', 'backup_manifest'], { maxBuffer: 1 << 24 });
    assert.equal(out.status, 0, out.stderr.toString());
    return out.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Feeds the archive in chunks of `size` bytes, so headers and data straddle chunk boundaries. */
async function tap(archive: Buffer, size: number, capture: string[]): Promise<{ tap: TarTap; out: Buffer }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < archive.length; i += size) chunks.push(archive.subarray(i, i + size));
  const t = new TarTap({ capture });
  const collected: Buffer[] = [];
  await pipeline(Readable.from(chunks), t, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) collected.push(chunk);
  });
  return { tap: t, out: Buffer.concat(collected) };
}

for (const format of ['gnu', 'ustar', 'posix'] as const) {
  test(`${format} tar: passes every byte through and keeps the named members`, async () => {
    const archive = makeTar(format);
    for (const size of [1, 511, 512, 4096, archive.length]) {
      const { tap: t, out } = await tap(archive, size, ['backup_label', 'backup_manifest']);
      assert.ok(out.equals(archive), 'the stream is unchanged');
      assert.match(t.captured.get('backup_label')?.toString() ?? '', /^START WAL LOCATION: 0\/2000028/);
      assert.equal(t.captured.get('backup_manifest')?.toString(), '{"Files":[]}');
      assert.equal(t.members, 6, 'label, base/, two directories, the file, manifest');
    }
  });
}

test('a member larger than the limit is refused rather than kept', async () => {
  const archive = makeTar('gnu');
  const t = new TarTap({ capture: ['backup_manifest'], maxCaptureBytes: 4 });
  await assert.rejects(pipeline(Readable.from([archive]), t, async (source: AsyncIterable<Buffer>) => {
    for await (const _ of source);
  }), /more than the 4/);
});

test('tar numbers: octal and base-256', () => {
  assert.equal(tarNumber(Buffer.from('00000001750\0')), 1000);
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUInt32BE(0x2_0000, 8);
  assert.equal(tarNumber(big), 0x2_0000);
});
