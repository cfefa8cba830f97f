/**
 * The SFTP version 3 wire format (draft-ietf-secsh-filexfer-02, what OpenSSH speaks): packet
 * framing, the few message types a backup repository needs, and file attributes.
 */

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  STAT: 17,
  RENAME: 18,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

export const FX_STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

const ATTR = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;

/** The largest packet we accept; OpenSSH's server sends at most 256 KiB. */
export const MAX_PACKET_BYTES = 4 * 1024 * 1024;

export interface FileAttrs {
  size?: number;
  uid?: number;
  gid?: number;
  /** st_mode, type bits included. */
  permissions?: number;
  atime?: number;
  mtime?: number;
}

export function isDirectory(attrs: FileAttrs): boolean {
  return attrs.permissions !== undefined && (attrs.permissions & 0o170000) === 0o040000;
}

export function isRegularFile(attrs: FileAttrs): boolean {
  return attrs.permissions === undefined || (attrs.permissions & 0o170000) === 0o100000;
}

/** Builds one packet: length, type, then the fields in order. */
export class PacketWriter {
  readonly #parts: Buffer[] = [];

  byte(value: number): this {
    this.#parts.push(Buffer.of(value));
    return this;
  }

  uint32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    this.#parts.push(b);
    return this;
  }

  uint64(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(value));
    this.#parts.push(b);
    return this;
  }

  string(value: string | Buffer): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.uint32(bytes.length);
    this.#parts.push(bytes);
    return this;
  }

  attrs(attrs: FileAttrs): this {
    let flags = 0;
    if (attrs.permissions !== undefined) flags |= ATTR.PERMISSIONS;
    this.uint32(flags);
    if (attrs.permissions !== undefined) this.uint32(attrs.permissions);
    return this;
  }

  /** The framed packet: length, type, the request id when given (every request but INIT), fields. */
  packet(type: number, id?: number): Buffer {
    const headLength = id === undefined ? 5 : 9;
    const head = Buffer.allocUnsafe(headLength);
    const bodyLength = this.#parts.reduce((n, part) => n + part.length, 0);
    head.writeUInt32BE(headLength - 4 + bodyLength);
    head[4] = type;
    if (id !== undefined) head.writeUInt32BE(id, 5);
    return Buffer.concat([head, ...this.#parts]);
  }
}

/** Reads the fields of one packet's payload; throws on a short packet. */
export class PacketReader {
  readonly #data: Buffer;
  #offset = 0;

  constructor(data: Buffer) {
    this.#data = data;
  }

  get remaining(): number {
    return this.#data.length - this.#offset;
  }

  #take(n: number): Buffer {
    if (this.#offset + n > this.#data.length) throw new Error('SFTP packet is shorter than its fields');
    const out = this.#data.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  uint32(): number {
    return this.#take(4).readUInt32BE();
  }

  uint64(): number {
    return Number(this.#take(8).readBigUInt64BE());
  }

  string(): Buffer {
    return this.#take(this.uint32());
  }

  text(): string {
    return this.string().toString('utf8');
  }

  attrs(): FileAttrs {
    const flags = this.uint32();
    const attrs: FileAttrs = {};
    if (flags & ATTR.SIZE) attrs.size = this.uint64();
    if (flags & ATTR.UIDGID) {
      attrs.uid = this.uint32();
      attrs.gid = this.uint32();
    }
    if (flags & ATTR.PERMISSIONS) attrs.permissions = this.uint32();
    if (flags & ATTR.ACMODTIME) {
      attrs.atime = this.uint32();
      attrs.mtime = this.uint32();
    }
    if (flags & ATTR.EXTENDED) {
      const count = this.uint32();
      for (let i = 0; i < count; i++) {
        this.string();
        this.string();
      }
    }
    return attrs;
  }
}

/** Splits a byte stream into packets (type and payload), holding at most one partial packet. */
export class PacketSplitter {
  #pending: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns the packets completed by them. */
  push(data: Buffer): { type: number; payload: Buffer }[] {
    this.#pending = this.#pending.length === 0 ? data : Buffer.concat([this.#pending, data]);
    const packets: { type: number; payload: Buffer }[] = [];
    while (this.#pending.length >= 5) {
      const length = this.#pending.readUInt32BE(0);
      if (length < 1 || length > MAX_PACKET_BYTES) throw new Error(`SFTP packet of ${length} bytes is out of bounds`);
      if (this.#pending.length < 4 + length) break;
      packets.push({ type: this.#pending[4] as number, payload: this.#pending.subarray(5, 4 + length) });
      this.#pending = this.#pending.subarray(4 + length);
    }
    return packets;
  }
}
