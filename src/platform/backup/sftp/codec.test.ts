import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FXP, isDirectory, isRegularFile, MAX_PACKET_BYTES, PacketReader, PacketSplitter, PacketWriter } from './codec.ts';

test('a request packet is framed as length, type, id, fields', () => {
  const packet = new PacketWriter().string('/srv/x').uint32(0x1a).attrs({ permissions: 0o640 }).packet(FXP.OPEN, 7);
  assert.equal(packet.readUInt32BE(0), packet.length - 4);
  assert.equal(packet[4], FXP.OPEN);
  const reader = new PacketReader(packet.subarray(5));
  assert.equal(reader.uint32(), 7);
  assert.equal(reader.text(), '/srv/x');
  assert.equal(reader.uint32(), 0x1a);
  assert.deepEqual(reader.attrs(), { permissions: 0o640 });
  assert.equal(reader.remaining, 0);
});

test('64-bit offsets survive the round trip', () => {
  const packet = new PacketWriter().uint64(2 ** 40 + 5).packet(FXP.READ);
  assert.equal(new PacketReader(packet.subarray(5)).uint64(), 2 ** 40 + 5);
});

test('the splitter reassembles packets cut anywhere and refuses absurd lengths', () => {
  const a = new PacketWriter().string('hello').packet(FXP.DATA, 1);
  const b = new PacketWriter().uint32(0).string('ok').string('').packet(FXP.STATUS, 2);
  const stream = Buffer.concat([a, b]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const splitter = new PacketSplitter();
    const packets = [...splitter.push(stream.subarray(0, cut)), ...splitter.push(stream.subarray(cut))];
    assert.deepEqual(
      packets.map((p) => p.type),
      [FXP.DATA, FXP.STATUS],
    );
  }
  const huge = Buffer.alloc(5);
  huge.writeUInt32BE(MAX_PACKET_BYTES + 1);
  assert.throws(() => new PacketSplitter().push(huge), /out of bounds/);
  assert.throws(() => new PacketReader(Buffer.from([0, 0, 0, 9, 1])).string(), /shorter than its fields/);
});

test('attributes tell directories from files', () => {
  const attrs = new PacketReader(
    Buffer.concat([new PacketWriter().uint32(0x1 | 0x4 | 0x8).uint64(42).uint32(0o040755).uint32(1).uint32(2).packet(0).subarray(5)]),
  ).attrs();
  assert.deepEqual(attrs, { size: 42, permissions: 0o040755, atime: 1, mtime: 2 });
  assert.ok(isDirectory(attrs));
  assert.ok(!isRegularFile(attrs));
  assert.ok(isRegularFile({ permissions: 0o100640 }));
});
