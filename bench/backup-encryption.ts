/**
 * Encryption throughput: TaskFlow's age streams (src/platform/backup/age-stream.ts) against
 * Debian's `age` CLI, both encrypting and decrypting the same 256 MiB file from the page cache
 * and throwing the output away. Both read the file into one reused buffer (our stream copies what
 * it is given before it asks for more, so the reader may reuse its buffer, as age's does). Rounds
 * alternate between the two, so load from elsewhere on the machine falls on both alike; the
 * figure is the median round. CPU time (all threads) is reported beside the wall time.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline';
import { chunkCipher } from '../src/platform/backup/age-cipher.ts';
import { loadIdentities, parseRecipient } from '../src/platform/backup/age-keys.ts';
import { createAgeDecryptStream, createAgeEncryptStream } from '../src/platform/backup/age-stream.ts';
import { tempDir } from '../test/helpers/platform.ts';

const INPUT_MIB = Number(process.env.BENCH_AGE_MIB ?? 256);
const ROUNDS = Number(process.env.BENCH_AGE_ROUNDS ?? 9);
/** Bytes per read of the input file. */
const READ_BYTES = 1024 * 1024;

type Progress = (message: string) => void;

export interface Throughput {
  /** Median of the rounds, MiB/s. */
  mibPerSecond: number;
  samplesMibPerSecond: number[];
  /** Median CPU seconds (user + system, all threads) per round. */
  cpuSeconds: number;
  /**
   * TaskFlow only: median minor page faults of this process per round, i.e. output memory touched
   * for the first time (4 KiB each). The age CLI reuses a few small buffers and is a fresh process.
   */
  minorPageFaults?: number;
}

interface Sample {
  seconds: number;
  cpuSeconds: number;
  minorPageFaults?: number;
}

export interface EncryptionCase {
  input: string;
  inputMiB: number;
  encrypt: { taskflow: Throughput; ageCli: Throughput; ratio: number };
  decrypt: { taskflow: Throughput; ageCli: Throughput; ratio: number };
  /** 1-minute load average before and after the case: other work on the machine moves every figure. */
  loadAverage: [number, number];
}

export interface EncryptionResult {
  description: string;
  ageVersion: string;
  /** The ChaCha20-Poly1305 TaskFlow's streams ran (age-cipher.ts; TASKFLOW_AGE_CIPHER picks it). */
  cipher: string;
  rounds: number;
  cases: EncryptionCase[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function discard(): Writable {
  return new Writable({
    write(_chunk: Buffer, _encoding, callback) {
      callback();
    },
  });
}

/**
 * Runs the age CLI for the rounds from one long-lived bash, which times each run with its `time`
 * (wall, user, system). Starting age from this process instead would fork it every round, and a
 * fork write-protects all of this process's memory: the next round of TaskFlow's stream would then
 * take a page fault on every page it reuses, a cost of where the CLI is started from, not of
 * encryption.
 */
class AgeRunner {
  readonly #shell: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  constructor(args: { recipient: string; plain: string; keyFile: string; sealed: string }) {
    const script = [
      "TIMEFORMAT='%R %U %S'",
      'while read -r what; do',
      '  if [ "$what" = encrypt ]; then { time age -r "$1" -o /dev/null "$2" 2>/dev/null; } 2>&1',
      '  else { time age -d -i "$3" -o /dev/null "$4" 2>/dev/null; } 2>&1; fi',
      '  echo "status $?"',
      'done',
    ].join('\n');
    this.#shell = spawn('bash', ['-c', script, 'age-runner', args.recipient, args.plain, args.keyFile, args.sealed]);
    this.#lines = createInterface({ input: this.#shell.stdout })[Symbol.asyncIterator]();
  }

  async #line(): Promise<string> {
    const next = await this.#lines.next();
    if (next.done) throw new Error('the age runner shell exited');
    return next.value;
  }

  async run(what: 'encrypt' | 'decrypt'): Promise<Sample> {
    this.#shell.stdin.write(`${what}\n`);
    const [real, user, system] = (await this.#line()).trim().split(/\s+/).map(Number);
    const status = await this.#line();
    if (status !== 'status 0' || real === undefined || user === undefined || system === undefined) throw new Error(`age ${what} failed (${status})`);
    return { seconds: real, cpuSeconds: user + system };
  }

  close(): void {
    this.#shell.stdin.end();
  }
}

/** Wall and CPU seconds and minor page faults (this process, all threads) of `run`. */
async function timed(run: () => Promise<void>): Promise<Sample> {
  const faults = process.resourceUsage().minorPageFault;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6, minorPageFaults: process.resourceUsage().minorPageFault - faults };
}

/** Reads `path` into one reused buffer, handing each read to `stream` once it took the previous one. */
async function feed(path: string, stream: Transform): Promise<void> {
  const file = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      await new Promise<void>((resolve, reject) => {
        stream.write(buffer.subarray(0, bytesRead), (err) => {
          if (err) reject(err);
          else resolve();
        });
      });
    }
    stream.end();
  } finally {
    await file.close();
  }
}

/** `path` through `stream` into nothing. */
async function through(path: string, stream: Transform): Promise<void> {
  await Promise.all([feed(path, stream), pipeline(stream, discard())]);
}

/** Writes `mib` MiB to `path` from a generator of 1 MiB blocks. */
async function writeInput(path: string, block: (i: number) => Buffer): Promise<void> {
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < INPUT_MIB; i++) yield block(i);
      })(),
    ),
    createWriteStream(path),
  );
}

/** Text like a dump's COPY rows: compresses about 5:1 with zstd -3, unlike random bytes. */
function dumpRows(i: number): Buffer {
  const words = ['design', 'review', 'ship', 'fix', 'plan', 'deploy', 'test', 'write', 'read', 'merge'];
  let text = '';
  for (let row = 0; text.length < 1024 * 1024; row++) {
    const id = i * 20_000 + row;
    text += `${id}\t${words[id % 10]!} ${words[(id * 7) % 10]!} #${id % 977}\t${(id * 2654435761) % 4294967296}\t2026-11-${String((id % 28) + 1).padStart(2, '0')}\n`;
  }
  return Buffer.from(text).subarray(0, 1024 * 1024);
}

function throughput(samples: Sample[]): Throughput {
  const rates = samples.map((s) => round1(INPUT_MIB / s.seconds));
  const result: Throughput = { mibPerSecond: round1(median(rates)), samplesMibPerSecond: rates, cpuSeconds: Math.round(median(samples.map((s) => s.cpuSeconds)) * 1000) / 1000 };
  const faults = samples.flatMap((s) => (s.minorPageFaults === undefined ? [] : [s.minorPageFaults]));
  if (faults.length > 0) result.minorPageFaults = median(faults);
  return result;
}

export async function runEncryptionBenchmark(progress: Progress): Promise<EncryptionResult> {
  const ageVersion = spawnSync('age', ['--version'], { encoding: 'utf8' });
  if (ageVersion.status !== 0) throw new Error('the age CLI is not installed (apt-get install age)');
  const dir = tempDir('bench-age');
  try {
    const keyFile = join(dir, 'key.txt');
    const made = spawnSync('age-keygen', ['-o', keyFile], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`age-keygen failed: ${made.stderr}`);
    const recipientText = spawnSync('age-keygen', ['-y', keyFile], { encoding: 'utf8' }).stdout.trim();
    const recipient = parseRecipient(recipientText);
    const identities = loadIdentities({ file: keyFile, env: {} });
    const inputs: [string, (i: number) => Buffer][] = [
      ['incompressible (random bytes)', () => randomBytes(1024 * 1024)],
      ['compressible (text rows)', dumpRows],
    ];
    const cases: EncryptionCase[] = [];
    for (const [input, block] of inputs) {
      const plain = join(dir, 'plain');
      const sealed = join(dir, 'sealed.age');
      progress(`backup/encryption: writing ${INPUT_MIB} MiB ${input}`);
      await writeInput(plain, block);
      if (spawnSync('age', ['-r', recipientText, '-o', sealed, plain]).status !== 0) throw new Error('age -r failed');
      // Both files on disk before the rounds, so no writeback of them runs beside a round.
      spawnSync('sync');
      const age = new AgeRunner({ recipient: recipientText, plain, keyFile, sealed });
      const ours = {
        encrypt: () => through(plain, createAgeEncryptStream([recipient])),
        decrypt: () => through(sealed, createAgeDecryptStream(identities)),
      };
      // One round of each, not counted: page cache, worker threads and JIT warm, as in a server.
      await ours.encrypt();
      await ours.decrypt();
      const s = { oursEncrypt: [] as Sample[], ageEncrypt: [] as Sample[], oursDecrypt: [] as Sample[], ageDecrypt: [] as Sample[] };
      let load0 = 0;
      try {
        await age.run('encrypt');
        await age.run('decrypt');
        load0 = loadavg()[0]!;
        for (let r = 0; r < ROUNDS; r++) {
          s.oursEncrypt.push(await timed(ours.encrypt));
          s.ageEncrypt.push(await age.run('encrypt'));
          s.oursDecrypt.push(await timed(ours.decrypt));
          s.ageDecrypt.push(await age.run('decrypt'));
        }
      } finally {
        age.close();
      }
      const result: EncryptionCase = {
        input,
        inputMiB: INPUT_MIB,
        encrypt: { taskflow: throughput(s.oursEncrypt), ageCli: throughput(s.ageEncrypt), ratio: 0 },
        decrypt: { taskflow: throughput(s.oursDecrypt), ageCli: throughput(s.ageDecrypt), ratio: 0 },
        loadAverage: [round1(load0), round1(loadavg()[0]!)],
      };
      result.encrypt.ratio = Math.round((result.encrypt.taskflow.mibPerSecond / result.encrypt.ageCli.mibPerSecond) * 100) / 100;
      result.decrypt.ratio = Math.round((result.decrypt.taskflow.mibPerSecond / result.decrypt.ageCli.mibPerSecond) * 100) / 100;
      progress(
        `backup/encryption: ${input}: encrypt ${result.encrypt.taskflow.mibPerSecond} vs age ${result.encrypt.ageCli.mibPerSecond} MiB/s (${result.encrypt.ratio}), ` +
          `decrypt ${result.decrypt.taskflow.mibPerSecond} vs ${result.decrypt.ageCli.mibPerSecond} MiB/s (${result.decrypt.ratio})`,
      );
      cases.push(result);
      rmSync(plain, { force: true });
      rmSync(sealed, { force: true });
    }
    return {
      description:
        `${INPUT_MIB} MiB read from the page cache, encrypted to one X25519 recipient (and the age CLI's output of it decrypted), the output discarded. ` +
        'TaskFlow: its age Transform streams in this process, as in production (the ChaCha20-Poly1305 named in `cipher` in 1 MiB batches, the first 8 on the stream thread, the rest in the worker pool, both directions), fed 1 MiB reads into one reused buffer. ' +
        'age CLI: `age -r R -o /dev/null FILE` and `age -d -i KEY -o /dev/null FILE`, process start included, timed by bash `time` in one long-lived shell (so this process never forks between rounds). cpuSeconds: user + system of all threads; minorPageFaults (TaskFlow): first touches of fresh output memory, 4 KiB each. ' +
        `Rounds alternate; the figure is the median of ${ROUNDS} after one warm-up round of each. ratio = TaskFlow ÷ age CLI.`,
      ageVersion: ageVersion.stdout.trim(),
      cipher: chunkCipher().name,
      rounds: ROUNDS,
      cases,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
