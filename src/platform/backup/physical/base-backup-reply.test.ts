import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BaseBackupReplyReader, errorResponse, queryMessage, type BaseBackupReplyHandlers } from './base-backup-reply.ts';

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function copyData(sub: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return message('d', Buffer.concat([Buffer.from(sub, 'latin1'), body]));
}

function row(fields: (string | null)[]): Buffer {
  const parts = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(fields.length);
  for (const field of fields) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(field === null ? -1 : Buffer.byteLength(field));
    parts.push(length);
    if (field !== null) parts.push(Buffer.from(field));
  }
  return message('D', Buffer.concat(parts));
}

function errorBody(fields: Record<string, string>): Buffer {
  return Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
}

/** What PostgreSQL 15 sends for BASE_BACKUP, archive and manifest split over several CopyData messages. */
function reply(archive: Buffer, manifest: Buffer): Buffer {
  const progress = Buffer.alloc(8);
  progress.writeBigInt64BE(BigInt(archive.length));
  return Buffer.concat([
    message('T', Buffer.from('row description')),
    row(['0/2000028', '1']),
    message('C', Buffer.from('SELECT\0')),
    message('H', Buffer.from([0, 0, 0])),
    copyData('n', Buffer.from('base.tar\0\0')),
    copyData('d', archive.subarray(0, 1000)),
    copyData('p', progress),
    copyData('d', archive.subarray(1000, 1001)),
    copyData('d', archive.subarray(1001)),
    copyData('m'),
    copyData('d', manifest.subarray(0, 10)),
    copyData('d', manifest.subarray(10)),
    message('c', Buffer.alloc(0)),
    message('T', Buffer.from('row description')),
    row(['0/2000100', '1']),
    message('C', Buffer.from('SELECT\0')),
    message('N', errorBody({ S: 'NOTICE', M: 'all required WAL segments have been archived' })),
    message('Z', Buffer.from('I')),
  ]);
}

interface Seen {
  archive: Buffer[];
  manifest: Buffer[];
  archives: number;
  progress: number[];
  rows: (string | null)[][];
  errors: Error[];
  ready: number;
}

function collect(): { seen: Seen; handlers: BaseBackupReplyHandlers } {
  const seen: Seen = { archive: [], manifest: [], archives: 0, progress: [], rows: [], errors: [], ready: 0 };
  return {
    seen,
    handlers: {
      archive: (piece) => seen.archive.push(piece),
      manifest: (piece) => seen.manifest.push(piece),
      newArchive: () => seen.archives++,
      progress: (bytes) => seen.progress.push(bytes),
      row: (fields) => seen.rows.push(fields),
      error: (err) => seen.errors.push(err),
      ready: () => seen.ready++,
    },
  };
}

test('the reply reads the same however the socket splits it: archive and manifest bytes, positions, progress, the end', () => {
  const archive = randomBytes(5000);
  const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n');
  const bytes = reply(archive, manifest);
  const splits = [[bytes.length], [1], [2], [3], [5], [6], [7], [64], [1023]];
  for (const [size] of splits) {
    const { seen, handlers } = collect();
    const reader = new BaseBackupReplyReader(handlers);
    for (let at = 0; at < bytes.length; at += size!) reader.push(bytes.subarray(at, at + size!));
    assert.deepEqual(seen.errors, [], `split every ${size}`);
    assert.ok(Buffer.concat(seen.archive).equals(archive), `archive, split every ${size}`);
    assert.equal(Buffer.concat(seen.manifest).toString(), manifest.toString());
    assert.equal(seen.archives, 1);
    assert.deepEqual(seen.progress, [5000]);
    assert.deepEqual(seen.rows, [['0/2000028', '1'], ['0/2000100', '1']]);
    assert.equal(seen.ready, 1);
  }
});

test('archive bytes are handed on as views of what was read, not copies', () => {
  const archive = randomBytes(300);
  const read = reply(archive, Buffer.from('{}'));
  const { seen, handlers } = collect();
  new BaseBackupReplyReader(handlers).push(read);
  assert.equal(seen.archive[0]?.buffer, read.buffer);
});

test("the server's ErrorResponse fails the reply with its message and SQLSTATE, and nothing after it is read", () => {
  const { seen, handlers } = collect();
  const reader = new BaseBackupReplyReader(handlers);
  reader.push(
    Buffer.concat([
      copyData('n'),
      message('E', errorBody({ S: 'ERROR', C: '58P01', M: 'requested WAL segment 000000010000000000000003 has already been removed', H: 'keep more WAL' })),
      copyData('d', Buffer.from('after the error')),
      message('Z', Buffer.from('I')),
    ]),
  );
  assert.equal(seen.errors.length, 1);
  assert.equal(seen.errors[0]?.message, 'requested WAL segment 000000010000000000000003 has already been removed');
  assert.equal((seen.errors[0] as Error & { code?: string }).code, '58P01');
  assert.equal((seen.errors[0] as Error & { hint?: string }).hint, 'keep more WAL');
  assert.deepEqual(seen.archive, []);
  assert.equal(seen.ready, 0);
  assert.match(errorResponse(Buffer.from([0])).message, /without a message/);
});

test('a reply that breaks the protocol fails: a bad length, an unknown message, a copy-in request, an oversized small message', () => {
  const cases: [Buffer, RegExp][] = [
    [Buffer.from([0x44, 0, 0, 0, 2]), /length 2/],
    [message('?', Buffer.alloc(1)), /unexpected message type 63/],
    [copyData('x'), /unexpected message type 120 in the base backup stream/],
    [message('G', Buffer.alloc(3)), /asked for data/],
    [Buffer.from([0x54, 0x7f, 0, 0, 0]), /bytes long/],
    [message('d', Buffer.alloc(0)), /empty CopyData/],
    [message('D', Buffer.from([0, 1, 0, 0])), /malformed DataRow/],
  ];
  for (const [bytes, expected] of cases) {
    const { seen, handlers } = collect();
    const reader = new BaseBackupReplyReader(handlers);
    reader.push(bytes);
    reader.push(message('Z', Buffer.from('I')));
    assert.equal(seen.errors.length, 1, String(expected));
    assert.match(seen.errors[0]!.message, expected);
    assert.equal(seen.ready, 0);
  }
});

test('a query message is Q, its length and the statement ending in a zero byte', () => {
  assert.deepEqual(queryMessage('BASE_BACKUP ( LABEL \'é\' )'), Buffer.concat([Buffer.from([0x51, 0, 0, 0, 31]), Buffer.from("BASE_BACKUP ( LABEL 'é' )\0")]));
});
