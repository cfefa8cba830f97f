/**
 * A pass-through stream that reads the tar format on the way: it counts members and keeps the
 * contents of a few small ones the caller names (pg_basebackup's `backup_label` and
 * `backup_manifest`), so a snapshot can record them without staging the archive anywhere.
 * Understands ustar (with its name prefix and base-256 sizes), GNU long names and pax headers.
 */
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

export interface TarTapOptions {
  /** Member names (without a leading `./`) whose contents to keep. */
  capture: string[];
  /** Refuse to keep a member larger than this (bytes). */
  maxCaptureBytes?: number;
}

type State = { kind: 'header' } | { kind: 'data'; name: string; remaining: number; padding: number; keep: Buffer[] | null; meta: 'L' | 'x' | null };

/** The octal or base-256 number of a tar header field. */
export function tarNumber(field: Buffer): number {
  if (field.length > 0 && ((field[0] ?? 0) & 0x80) !== 0) {
    let value = 0n;
    for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i] ?? 0);
    return Number(value);
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

function normalise(name: string): string {
  return name.replace(/^(\.\/)+/, '');
}

export class TarTap extends Transform {
  /** Members seen (files, directories, links). */
  members = 0;
  /** The kept members' contents, by name. */
  readonly captured = new Map<string, Buffer>();
  readonly #capture: Set<string>;
  readonly #max: number;
  #pending: Buffer = Buffer.alloc(0);
  #state: State = { kind: 'header' };
  #longName: string | null = null;
  #ended = false;

  constructor(options: TarTapOptions) {
    super();
    this.#capture = new Set(options.capture);
    this.#max = options.maxCaptureBytes ?? 64 * 1024 * 1024;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#consume(chunk);
      callback(null, chunk);
    } catch (err) {
      callback(err as Error);
    }
  }

  #consume(chunk: Buffer): void {
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    while (data.length > 0 && !this.#ended) {
      const state = this.#state;
      if (state.kind === 'header') {
        if (data.length < BLOCK) {
          this.#pending = Buffer.from(data);
          return;
        }
        this.#header(data.subarray(0, BLOCK));
        data = data.subarray(BLOCK);
        continue;
      }
      if (state.remaining > 0) {
        const take = Math.min(state.remaining, data.length);
        if (state.keep) state.keep.push(Buffer.from(data.subarray(0, take)));
        state.remaining -= take;
        data = data.subarray(take);
        if (state.remaining > 0) return;
        this.#finishMember(state);
      }
      const skip = Math.min(state.padding, data.length);
      state.padding -= skip;
      data = data.subarray(skip);
      if (state.padding === 0) this.#state = { kind: 'header' };
    }
  }

  #header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      // The end-of-archive marker (two zero blocks); whatever follows is padding.
      this.#ended = true;
      return;
    }
    const size = tarNumber(block.subarray(124, 136));
    const type = String.fromCharCode(block[156] ?? 0x30);
    const prefix = block.subarray(257, 263).toString('latin1').startsWith('ustar') ? cString(block.subarray(345, 500)) : '';
    const plain = cString(block.subarray(0, 100));
    const name = normalise(this.#longName ?? (prefix ? `${prefix}/${plain}` : plain));
    const meta = type === 'L' ? 'L' : type === 'x' ? 'x' : null;
    if (meta === null) {
      this.#longName = null;
      this.members++;
    }
    const wanted = meta !== null || (this.#capture.has(name) && (type === '0' || type === '\0'));
    if (wanted && size > this.#max) throw new Error(`tar member ${name} is ${size} bytes, more than the ${this.#max} this reader keeps`);
    const state: State = { kind: 'data', name, remaining: size, padding: (BLOCK - (size % BLOCK)) % BLOCK, keep: wanted ? [] : null, meta };
    this.#state = state;
    if (size === 0) this.#finishMember(state);
  }

  #finishMember(state: Extract<State, { kind: 'data' }>): void {
    if (!state.keep) return;
    const content = Buffer.concat(state.keep);
    state.keep = null;
    if (state.meta === 'L') this.#longName = cString(content);
    else if (state.meta === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(content.toString('utf8'))?.[1];
      if (path !== undefined) this.#longName = path;
    } else this.captured.set(state.name, content);
  }
}
