/** Interoperability of our native age streams with Debian's age CLI (age, age-keygen), both ways. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { IDENTITY_ENV, loadIdentities, parseRecipient, type AgeIdentity } from '../src/platform/backup/age-keys.ts';
import { CHUNK_BYTES, createAgeDecryptStream, createAgeEncryptStream } from '../src/platform/backup/age-stream.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { ageUnavailable } from './backup-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

const SIZES = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 1024 * 1024 + 3];
const SEALED = CHUNK_BYTES + 16;

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: Buffer; stderr: string } {
  const out = spawnSync(command, args, { maxBuffer: 64 * 1024 * 1024, env: { PATH: process.env.PATH, ...options.env } });
  return { status: out.status, stdout: out.stdout, stderr: out.stderr.toString() };
}

/** age-keygen: the key file, and its recipient read back with age-keygen -y. */
function ageKeygen(path: string): string {
  const made = run('age-keygen', ['-o', path]);
  assert.equal(made.status, 0, made.stderr);
  const recipient = run('age-keygen', ['-y', path]);
  assert.equal(recipient.status, 0, recipient.stderr);
  return recipient.stdout.toString().trim();
}

async function ourEncrypt(input: string, output: string, recipients: string[]): Promise<void> {
  await pipeline(createReadStream(input), createAgeEncryptStream(recipients.map(parseRecipient)), createWriteStream(output));
}

async function ourDecrypt(input: string, identities: AgeIdentity[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    createReadStream(input),
    createAgeDecryptStream(identities),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

describe('age interoperability with the age CLI', { skip: ageUnavailable() ?? false }, () => {
  let dir: string;
  let keyFile: string;
  let recipient: string;
  let identities: AgeIdentity[];
  before(() => {
    dir = tempDir('age');
    keyFile = join(dir, 'key.txt');
    recipient = ageKeygen(keyFile);
    identities = loadIdentities({ file: keyFile, env: {} });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('our output decrypts with age -d -i, at every chunk boundary', async () => {
    for (const size of SIZES) {
      const plain = randomBytes(size);
      writeFileSync(join(dir, 'plain'), plain);
      await ourEncrypt(join(dir, 'plain'), join(dir, 'ours.age'), [recipient]);
      const out = run('age', ['-d', '-i', keyFile, join(dir, 'ours.age')]);
      assert.equal(out.status, 0, `size ${size}: ${out.stderr}`);
      assert.deepEqual(out.stdout, plain, `size ${size}`);
    }
  });

  test('age -r output decrypts with ours, at every chunk boundary', async () => {
    for (const size of SIZES) {
      const plain = randomBytes(size);
      writeFileSync(join(dir, 'plain'), plain);
      const sealed = run('age', ['-r', recipient, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]);
      assert.equal(sealed.status, 0, sealed.stderr);
      assert.deepEqual(await ourDecrypt(join(dir, 'theirs.age'), identities), plain, `size ${size}`);
    }
  });

  test('several recipients both ways: each identity opens the file on its own', async () => {
    const secondKey = join(dir, 'second.txt');
    const second = ageKeygen(secondKey);
    writeFileSync(join(dir, 'plain'), 'for two operators');
    await ourEncrypt(join(dir, 'plain'), join(dir, 'ours.age'), [recipient, second]);
    for (const key of [keyFile, secondKey]) {
      assert.equal(run('age', ['-d', '-i', key, join(dir, 'ours.age')]).stdout.toString(), 'for two operators');
    }
    assert.equal(run('age', ['-r', recipient, '-r', second, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]).status, 0);
    const secondOnly = loadIdentities({ file: secondKey, env: {} });
    assert.equal((await ourDecrypt(join(dir, 'theirs.age'), secondOnly)).toString(), 'for two operators');
  });

  test('the identity may come from the environment instead of a file', async () => {
    writeFileSync(join(dir, 'plain'), 'from the environment');
    assert.equal(run('age', ['-r', recipient, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]).status, 0);
    const fromEnv = loadIdentities({ env: { [IDENTITY_ENV]: readFileSync(keyFile, 'utf8') } });
    assert.equal((await ourDecrypt(join(dir, 'theirs.age'), fromEnv)).toString(), 'from the environment');
  });

  test('truncated, reordered or tampered age -r output fails in ours, as in age', async () => {
    writeFileSync(join(dir, 'plain'), randomBytes(3 * CHUNK_BYTES));
    assert.equal(run('age', ['-r', recipient, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]).status, 0);
    const sealed = readFileSync(join(dir, 'theirs.age'));
    const start = sealed.length - 3 * SEALED;
    const chunk = (i: number): Buffer => sealed.subarray(start + i * SEALED, start + (i + 1) * SEALED);
    const flipped = Buffer.from(sealed);
    flipped[start + 100] = (flipped[start + 100] as number) ^ 0x80;
    const variants: Record<string, Buffer> = {
      'truncated at a chunk boundary': sealed.subarray(0, start + 2 * SEALED),
      'truncated mid-chunk': sealed.subarray(0, sealed.length - 7),
      reordered: Buffer.concat([sealed.subarray(0, start), chunk(1), chunk(0), chunk(2)]),
      'a flipped bit': flipped,
      'trailing bytes': Buffer.concat([sealed, Buffer.from('junk')]),
    };
    for (const [what, bytes] of Object.entries(variants)) {
      const path = join(dir, 'bad.age');
      writeFileSync(path, bytes);
      await assert.rejects(ourDecrypt(path, identities), (err: unknown) => isBackupError(err, 'age-integrity'), what);
      assert.notEqual(run('age', ['-d', '-i', keyFile, '-o', join(dir, 'out'), path]).status, 0, `age also refuses: ${what}`);
    }
  });

  test('our truncated output is refused by age too, so the format carries the end marker', async () => {
    writeFileSync(join(dir, 'plain'), randomBytes(2 * CHUNK_BYTES));
    await ourEncrypt(join(dir, 'plain'), join(dir, 'ours.age'), [recipient]);
    const sealed = readFileSync(join(dir, 'ours.age'));
    writeFileSync(join(dir, 'cut.age'), sealed.subarray(0, sealed.length - SEALED));
    const out = run('age', ['-d', '-i', keyFile, '-o', join(dir, 'out'), join(dir, 'cut.age')]);
    assert.notEqual(out.status, 0);
    assert.match(out.stderr, /unexpected EOF|truncated|last chunk/i);
  });

  test('a wrong identity fails clearly', async () => {
    const otherKey = join(dir, 'other.txt');
    ageKeygen(otherKey);
    writeFileSync(join(dir, 'plain'), 'not for you');
    assert.equal(run('age', ['-r', recipient, '-o', join(dir, 'theirs.age'), join(dir, 'plain')]).status, 0);
    await assert.rejects(ourDecrypt(join(dir, 'theirs.age'), loadIdentities({ file: otherKey, env: {} })), (err: unknown) => {
      assert.ok(isBackupError(err, 'age-no-identity'));
      assert.match(err.message, /none of the identities given .* can decrypt this file/);
      return true;
    });
  });

  test('armored output (age -a) is refused with a message that says what to do', async () => {
    writeFileSync(join(dir, 'plain'), 'armored');
    assert.equal(run('age', ['-a', '-r', recipient, '-o', join(dir, 'armored.age'), join(dir, 'plain')]).status, 0);
    await assert.rejects(ourDecrypt(join(dir, 'armored.age'), identities), /armored .* not supported; use the binary format/);
  });
});
