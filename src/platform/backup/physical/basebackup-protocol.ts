/**
 * A base backup taken over a replication connection: TaskFlow sends PostgreSQL's `BASE_BACKUP`
 * command itself (the replication protocol of PostgreSQL 15) instead of running pg_basebackup, so
 * the server can compress the archive (zstd with a worker per core, in C, next to the data) while
 * the backup_manifest still comes back: pg_basebackup refuses to put the manifest into an archive
 * the server compressed ("cannot inject manifest into a compressed tar file"); here it arrives as
 * its own part of the copy stream and is appended as a second, small archive.
 *
 * The stream is the server's zstd-compressed tar (the cluster and the WAL it needs, ending with
 * tar's end-of-archive blocks), then one zstd frame holding a tar archive of `backup_manifest`.
 * Decompressing gives the two archives back to back: GNU tar reads both with `--ignore-zeros`
 * (`tar -xi`). The stream ends only after the server reported the backup's end position, so a
 * stream cut short can never pass as complete; destroying it closes the connection, which makes
 * the server abort the backup.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import pg from 'pg';
import { BaseBackupReplyReader, queryMessage } from './base-backup-reply.ts';
import { clientConfig, databaseUnreachable, isCertificateError, type ConnectionTarget } from '../../postgres/connection.ts';

/** What a base backup says about itself: where its WAL starts and ends, and on which timeline. */
export interface BaseBackupFacts {
  timeline: number;
  startLsn: string;
  stopLsn: string;
}

export interface BaseBackupRequest {
  /** The backup label (in backup_label, and in the walsender's command for pg_stat_activity). */
  label: string;
  /** zstd level of the server's compression. */
  compressionLevel: number;
  /** zstd worker threads in the server (0: compress on the walsender's own thread). */
  workers: number;
  /** Caps the rate the server reads the cluster at, like pg_basebackup's --max-rate (`32M`, `500k`). */
  maxRate?: string | undefined;
  appName?: string;
  /**
   * The client certificate and key (PEM) to present, for a role whose pg_hba lines say
   * `clientcert=verify-full`; needs `target.ca` (TLS verify-full).
   */
  clientCertificate?: { cert: string; key: string } | undefined;
  /** Added to the error when the server's pg_hba refuses the connection: what to do about it. */
  refusedHint?: string | undefined;
  /** Plain bytes the server has sent so far (before compression); about every few megabytes. */
  onProgress?: (bytes: number) => void;
  /** Called with the backup's facts just before the stream ends. */
  onFacts?: (facts: BaseBackupFacts) => void;
  signal?: AbortSignal | undefined;
}

/** The socket under a node-postgres client (not in its public types): the reply is read off it, paused for backpressure. */
interface ClientInternals {
  connection: { stream: Socket };
}

/** Upper bound on the backup_manifest held in memory (about 150 bytes per file of the cluster). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/** pg_basebackup's --max-rate syntax (kB by default, `k` or `M` suffix) as the kB/s BASE_BACKUP takes. */
export function maxRateKb(rate: string): number {
  const match = /^(\d+)\s*([kM]?)$/.exec(rate.trim());
  if (!match?.[1]) throw new Error(`max rate "${rate}" is not a number of kB/s with an optional k or M suffix (32M, 500k)`);
  const kb = Number(match[1]) * (match[2] === 'M' ? 1024 : 1);
  if (kb < 32 || kb > 1_048_576) throw new Error(`max rate "${rate}" is out of range (32 kB/s to 1024 MB/s)`);
  return kb;
}

/** The BASE_BACKUP command: one archive with the WAL it needs, a manifest, compressed by the server. */
export function baseBackupCommand(request: BaseBackupRequest): string {
  const options = [
    `LABEL ${pg.escapeLiteral(request.label)}`,
    "CHECKPOINT 'fast'",
    'WAL true',
    // The WAL the backup needs is inside it, so it need not wait for the archiver (pg_basebackup
    // sends the same with -X fetch or stream); waiting would add the archiving of the last segment.
    'WAIT false',
    "MANIFEST 'yes'",
    "COMPRESSION 'zstd'",
    `COMPRESSION_DETAIL 'level=${Math.trunc(request.compressionLevel)},workers=${Math.max(0, Math.trunc(request.workers))}'`,
    ...(request.onProgress ? ['PROGRESS true'] : []),
    ...(request.maxRate ? [`MAX_RATE ${maxRateKb(request.maxRate)}`] : []),
  ];
  return `BASE_BACKUP ( ${options.join(', ')} )`;
}

/** One regular file as a ustar archive member (header, data, padding to 512 bytes). */
export function tarMember(name: string, data: Buffer, mtime: Date): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar member name too long: ${name}`);
  const header = Buffer.alloc(512);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';
  header.write(name, 0, 'utf8');
  header.write(octal(0o600, 8), 100, 'ascii');
  header.write(octal(0, 8), 108, 'ascii');
  header.write(octal(0, 8), 116, 'ascii');
  header.write(octal(data.length, 12), 124, 'ascii');
  header.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136, 'ascii');
  header.write(' '.repeat(8), 148, 'ascii');
  header.write('0', 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding]);
}

/** The backup_manifest as a second archive in one zstd frame (with its content size and checksum). */
export function manifestArchive(manifest: Buffer, level: number, mtime: Date): Buffer {
  const tar = Buffer.concat([tarMember('backup_manifest', manifest, mtime), Buffer.alloc(1024)]);
  return zstdCompressSync(tar, {
    params: { [zlibConstants.ZSTD_c_compressionLevel]: level, [zlibConstants.ZSTD_c_checksumFlag]: 1 },
    pledgedSrcSize: tar.length,
  });
}

/** A replication connection that could not be opened, said with the server's address (refused by pg_hba: the role, and what to do). */
export function replicationConnectError(target: ConnectionTarget, err: unknown, refusedHint?: string): Error {
  if (isCertificateError(err)) return databaseUnreachable(target, err);
  const { code, message } = err as { code?: string; message?: string };
  const where = `${target.host}:${target.port}`;
  const text = message ?? String(err);
  if (code === '28000' && /pg_hba\.conf/.test(text)) {
    return new Error(`PostgreSQL at ${where} does not admit replication connections of ${target.user} from this machine (${text})${refusedHint ? `: ${refusedHint}` : ''}`);
  }
  return new Error(`could not open a replication connection to ${where}: ${text}`);
}

/** node-postgres settings of the replication connection: the target's, with the client certificate when there is one. */
function replicationClientConfig(target: ConnectionTarget, request: BaseBackupRequest): pg.ClientConfig {
  const config = clientConfig(target, 'postgres');
  if (request.clientCertificate) {
    if (typeof config.ssl !== 'object') throw new Error(`a client certificate for ${target.host}:${target.port} needs TLS with the cluster's CA`);
    config.ssl = { ...config.ssl, ...request.clientCertificate };
  }
  return { ...config, application_name: request.appName ?? 'taskflow-snapshot', replication: true } as pg.ClientConfig;
}

/**
 * Starts a base backup of `target` (whose user needs the REPLICATION attribute) and returns its
 * stream. Connection and protocol errors, and an aborted `signal`, fail the stream.
 */
export function startBaseBackup(target: ConnectionTarget, request: BaseBackupRequest): Readable {
  const command = baseBackupCommand(request);
  const client = new pg.Client(replicationClientConfig(target, request));
  const socket = () => (client as unknown as ClientInternals).connection.stream;
  let paused = false;
  let finished = false;
  let archives = 0;
  let manifestBytes = 0;
  const manifest: Buffer[] = [];
  const positions: { lsn: string; timeline: number }[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.end().catch(() => undefined);
  };

  const stream = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (paused) {
        paused = false;
        socket().resume();
      }
    },
    destroy(err, callback) {
      if (!finished) {
        finished = true;
        // Closing the connection mid-copy makes the server abort the backup.
        try {
          socket().destroy();
        } catch {
          /* never connected */
        }
      }
      close();
      callback(err);
    },
  });
  const fail = (err: Error) => {
    if (!stream.destroyed) stream.destroy(err);
  };
  const deliver = (chunk: Buffer) => {
    if (stream.destroyed) return;
    if (!stream.push(chunk) && !paused) {
      paused = true;
      socket().pause();
    }
  };

  const reader = new BaseBackupReplyReader({
    archive: deliver,
    manifest(piece) {
      manifestBytes += piece.length;
      if (manifestBytes > MAX_MANIFEST_BYTES) fail(new Error(`the backup_manifest is larger than ${MAX_MANIFEST_BYTES} bytes`));
      else manifest.push(piece);
    },
    newArchive() {
      archives++;
      if (archives > 1) fail(new Error('the cluster has tablespaces besides the default ones; snapshots cover a cluster without extra tablespaces'));
    },
    progress(bytes) {
      request.onProgress?.(bytes);
    },
    row(fields) {
      const [first, second] = fields;
      // The start and end position rows: (recptr text, tli int8); the tablespace row has 3 fields.
      if (fields.length === 2 && first && second) positions.push({ lsn: first, timeline: Number(second) });
    },
    error: fail,
    ready() {
      if (stream.destroyed) return;
      const [start, stop] = positions;
      if (archives !== 1 || !manifestBytes || !start || !stop) {
        fail(new Error('the base backup ended without its archive, manifest or start and end positions'));
        return;
      }
      finished = true;
      try {
        request.onFacts?.({ timeline: start.timeline, startLsn: start.lsn, stopLsn: stop.lsn });
        deliver(manifestArchive(Buffer.concat(manifest), request.compressionLevel, new Date()));
      } catch (err) {
        fail(err as Error);
        return;
      }
      stream.push(null);
      close();
    },
  });

  /**
   * Sends BASE_BACKUP and reads the reply off the socket itself, node-postgres's parser detached
   * (it would copy every CopyData message); the connection serves nothing else and is closed after.
   */
  const run = () => {
    const sock = socket();
    for (const listener of sock.listeners('data')) sock.removeListener('data', listener as (chunk: Buffer) => void);
    sock.on('data', (chunk: Buffer) => {
      if (!stream.destroyed) reader.push(chunk);
    });
    sock.write(queryMessage(command));
  };

  client.on('error', (err) => {
    fail(new Error(`base backup connection failed: ${err.message}`));
  });
  client.on('end', () => {
    if (!finished) fail(new Error('the base backup connection closed before the backup ended'));
  });
  const signal = request.signal;
  signal?.addEventListener(
    'abort',
    () => {
      fail(signal.reason instanceof Error ? signal.reason : new Error('the base backup was cancelled'));
    },
    { once: true },
  );
  client.connect().then(
    () => {
      if (stream.destroyed) close();
      else run();
    },
    (err: unknown) => {
      fail(replicationConnectError(target, err, request.refusedHint));
    },
  );
  return stream;
}
