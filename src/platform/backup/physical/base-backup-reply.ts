/**
 * The server's reply to BASE_BACKUP, read straight off the connection's socket: PostgreSQL's
 * backend messages (a 1-byte type and a 4-byte length, then the body), with the copy stream's own
 * sub-messages inside CopyData (PostgreSQL 15: `n` new archive, `m` manifest follows, `d` data,
 * `p` progress).
 *
 * Archive and manifest bytes are handed on as views into the socket's buffers, as they arrive,
 * even when a CopyData message spans several reads: a readable socket never reuses a buffer it
 * emitted, so nothing is copied. Through node-postgres's parser every CopyData message had to be
 * copied (it reuses its read buffer), and on a 2-core machine the copying and the collections of
 * those short-lived megabytes took CPU from the server compressing the backup (bench/README.md).
 */

/** What the reply carries, in order. */
export interface BaseBackupReplyHandlers {
  /** A piece of the archive's bytes (a view: keep it, never write to it). */
  archive(piece: Buffer): void;
  /** A piece of the backup_manifest's bytes (a view, as above). */
  manifest(piece: Buffer): void;
  /** The server starts an archive (one per tablespace). */
  newArchive(): void;
  /** Plain bytes the server has sent so far (PROGRESS true). */
  progress(bytes: number): void;
  /** A row of a result set (the start and end positions, the tablespaces). */
  row(fields: (string | null)[]): void;
  /** The server's ErrorResponse, or a reply that breaks the protocol; nothing else follows. */
  error(err: Error): void;
  /** ReadyForQuery: the command is over. */
  ready(): void;
}

/** Backend message types (PostgreSQL's protocol, chapter 55.7). */
const COPY_DATA = 0x64; // 'd'
const DATA_ROW = 0x44; // 'D'
const ERROR_RESPONSE = 0x45; // 'E'
const READY_FOR_QUERY = 0x5a; // 'Z'
const COPY_IN_RESPONSE = 0x47; // 'G'
const COPY_BOTH_RESPONSE = 0x57; // 'W'
/** Types that carry nothing a base backup needs: RowDescription, CommandComplete, CopyOutResponse, CopyDone, NoticeResponse, ParameterStatus, NotificationResponse. */
const IGNORED = new Set([0x54, 0x43, 0x48, 0x63, 0x4e, 0x53, 0x41]);

/** The copy stream's sub-messages, the first byte of a CopyData. */
const NEW_ARCHIVE = 0x6e; // 'n'
const MANIFEST_FOLLOWS = 0x6d; // 'm'
const DATA = 0x64; // 'd'
const PROGRESS = 0x70; // 'p'

/** Any message but archive data is small; a longer one is a broken stream, not something to buffer. */
const MAX_SMALL_MESSAGE = 1024 * 1024;

const HEADER_BYTES = 5;

/** The fields of an ErrorResponse body as an Error with node-postgres's property names (code, severity, detail, hint). */
export function errorResponse(body: Buffer): Error {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at] as number);
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', at + 1, end));
    at = end + 1;
  }
  const err = new Error(fields.get('M') ?? 'the server reported an error without a message');
  const extra: Record<string, string> = {};
  for (const [key, name] of [['C', 'code'], ['S', 'severity'], ['D', 'detail'], ['H', 'hint']] as const) {
    const value = fields.get(key);
    if (value !== undefined) extra[name] = value;
  }
  return Object.assign(err, extra);
}

/** The fields of a DataRow body, as text (NULL as null). */
function dataRow(body: Buffer): (string | null)[] {
  const count = body.readInt16BE(0);
  const fields: (string | null)[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(at);
    at += 4;
    if (length < 0) fields.push(null);
    else {
      fields.push(body.toString('utf8', at, at + length));
      at += length;
    }
  }
  return fields;
}

/** Feeds the reply's bytes in as they come; calls the handlers in the stream's order. */
export class BaseBackupReplyReader {
  readonly #on: BaseBackupReplyHandlers;
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerBytes = 0;
  #type = 0;
  /** Bytes of the current message's body still to come. */
  #left = 0;
  /** The CopyData's sub-message type, once read (-1 before). */
  #sub = -1;
  /** The body of a small message, in pieces. */
  #parts: Buffer[] = [];
  #inManifest = false;
  #done = false;

  constructor(handlers: BaseBackupReplyHandlers) {
    this.#on = handlers;
  }

  /** Takes the next bytes read from the socket (kept by reference: the caller must never reuse them). */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.#done) {
      if (this.#headerBytes < HEADER_BYTES) {
        const n = Math.min(HEADER_BYTES - this.#headerBytes, chunk.length - at);
        chunk.copy(this.#header, this.#headerBytes, at, at + n);
        this.#headerBytes += n;
        at += n;
        if (this.#headerBytes === HEADER_BYTES) this.#startMessage();
        continue;
      }
      if (this.#type === COPY_DATA && this.#sub < 0) {
        this.#sub = chunk[at] as number;
        at += 1;
        this.#left -= 1;
        if (this.#sub !== DATA && this.#left > MAX_SMALL_MESSAGE) {
          this.#fail(`a copy sub-message of type ${this.#sub} is ${this.#left} bytes long`);
          return;
        }
      } else {
        const n = Math.min(this.#left, chunk.length - at);
        const piece = chunk.subarray(at, at + n);
        at += n;
        this.#left -= n;
        if (this.#type === COPY_DATA && this.#sub === DATA) {
          if (this.#inManifest) this.#on.manifest(piece);
          else this.#on.archive(piece);
        } else this.#parts.push(piece);
      }
      if (this.#left === 0) this.#endMessage();
    }
  }

  #startMessage(): void {
    this.#type = this.#header[0] as number;
    const length = this.#header.readInt32BE(1);
    if (length < 4) {
      this.#fail(`message type ${this.#type} has length ${length}`);
      return;
    }
    this.#left = length - 4;
    this.#sub = -1;
    this.#parts = [];
    if (this.#type === COPY_DATA && this.#left === 0) this.#fail('an empty CopyData message');
    else if (this.#type !== COPY_DATA && this.#left > MAX_SMALL_MESSAGE) this.#fail(`message type ${this.#type} is ${this.#left} bytes long`);
    else if (this.#left === 0) this.#endMessage();
  }

  #endMessage(): void {
    this.#headerBytes = 0;
    const body = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts);
    this.#parts = [];
    switch (this.#type) {
      case COPY_DATA:
        this.#copyMessage(body);
        return;
      case DATA_ROW: {
        let fields: (string | null)[];
        try {
          fields = dataRow(body);
        } catch {
          this.#fail('a malformed DataRow in the reply to BASE_BACKUP');
          return;
        }
        this.#on.row(fields);
        return;
      }
      case ERROR_RESPONSE:
        this.#done = true;
        this.#on.error(errorResponse(body));
        return;
      case READY_FOR_QUERY:
        this.#done = true;
        this.#on.ready();
        return;
      case COPY_IN_RESPONSE:
      case COPY_BOTH_RESPONSE:
        this.#fail('the server asked for data during a base backup');
        return;
      default:
        if (!IGNORED.has(this.#type)) this.#fail(`unexpected message type ${this.#type} in the reply to BASE_BACKUP`);
    }
  }

  #copyMessage(body: Buffer): void {
    switch (this.#sub) {
      case DATA:
        return;
      case NEW_ARCHIVE:
        this.#on.newArchive();
        return;
      case MANIFEST_FOLLOWS:
        this.#inManifest = true;
        return;
      case PROGRESS:
        if (body.length >= 8) this.#on.progress(Number(body.readBigInt64BE(0)));
        return;
      default:
        this.#fail(`unexpected message type ${this.#sub} in the base backup stream`);
    }
  }

  #fail(message: string): void {
    this.#done = true;
    this.#on.error(new Error(message));
  }
}

/** A simple-query protocol message (`Q`) carrying `sql`. */
export function queryMessage(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const message = Buffer.alloc(HEADER_BYTES + text.length);
  message[0] = 0x51; // 'Q'
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, HEADER_BYTES);
  return message;
}
