/**
 * The backup pipeline: source → zstd → age → SHA-256 → repository, streaming, then the manifest;
 * and back: repository → SHA-256 check → age → zstd → destination. Plus verification (no key
 * needed: it checks the stored bytes against the manifest) and verified copies to secondaries.
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createAgeDecryptStream, createAgeEncryptStream } from './age-stream.ts';
import { recipientFingerprint, type AgeIdentity, type AgeRecipient } from './age-keys.ts';
import { BackupError, isBackupError } from './errors.ts';
import { encodeManifest, MANIFEST_FORMAT, MANIFEST_SUFFIX, manifestName, readManifest, type BackupManifest, type SourceDetails } from './manifest.ts';
import { checkObjectName } from './object-names.ts';
import type { Repository } from './repository.ts';
import { StreamMeter } from './stream-meter.ts';
import { createZstdFramesDecompress } from './zstd-frame-reader.ts';
import { createZstdFramesCompress } from './zstd-frames.ts';

export const DEFAULT_ZSTD_LEVEL = 3;
/** Snapshots: compressed by the primary itself (basebackup-protocol.ts), where CPU is the scarce thing. */
export const DEFAULT_SNAPSHOT_ZSTD_LEVEL = 1;

export interface WriteBackupProps {
  repository: Repository;
  /** Object name; the manifest goes to `<name>.manifest.json`. */
  name: string;
  kind: string;
  /** The plain bytes, read once. */
  source: Readable;
  recipients: AgeRecipient[];
  sourceDetails?: SourceDetails;
  /** zstd level, 1 (fast) to 19; 3 by default. */
  compressionLevel?: number;
  /**
   * The source is already a zstd stream at `compressionLevel` (pg_basebackup's own compression,
   * on all cores, in C): stored as it comes, its plain size then unknown (`sizes.raw` null).
   */
  precompressed?: boolean;
  now?: () => Date;
}

/**
 * Compresses, encrypts and stores `source` under `name`, then writes its manifest. Nothing is
 * ever held whole in memory. On any failure neither the object nor its manifest is left behind.
 */
export async function writeBackupObject(props: WriteBackupProps): Promise<BackupManifest> {
  const { repository, name } = props;
  checkObjectName(name);
  if (name.endsWith(MANIFEST_SUFFIX)) throw new BackupError('object-name', `object name ${name} is reserved for manifests`);
  const level = props.compressionLevel ?? DEFAULT_ZSTD_LEVEL;
  // Checked before any byte moves: a manifest that could not be written would orphan the object.
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(props.kind)) throw new BackupError('manifest-invalid', `backup kind ${JSON.stringify(props.kind)} must be [a-z][a-z0-9-]*`);
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new BackupError('manifest-invalid', `zstd level ${level} must be an integer from 1 to 19`);
  const raw = new StreamMeter();
  const compressed = new StreamMeter();
  const stored = new StreamMeter({ hash: true });
  const stages = props.precompressed ? [compressed] : [raw, createZstdFramesCompress({ level }), compressed];
  const streams = pipeline(props.source, ...(stages as [StreamMeter]), createAgeEncryptStream(props.recipients), stored);
  const put = await settleTransfer(repository.put(name, stored), streams, stored);
  if (put.size !== stored.bytes) {
    await repository.delete(name).catch(() => undefined);
    throw new BackupError('repository-failed', `repository ${repository.name} stored ${put.size} bytes of ${name}, not ${stored.bytes}`);
  }
  const manifest: BackupManifest = {
    format: MANIFEST_FORMAT,
    object: name,
    kind: props.kind,
    created: (props.now?.() ?? new Date()).toISOString(),
    sizes: { raw: props.precompressed ? null : raw.bytes, compressed: compressed.bytes, stored: stored.bytes },
    sha256: stored.sha256(),
    compression: { algorithm: 'zstd', level },
    encryption: { format: 'age-encryption.org/v1', recipients: props.recipients.map((r) => recipientFingerprint(r.text)) },
    source: props.sourceDetails ?? {},
  };
  try {
    await repository.put(manifestName(name), Readable.from([encodeManifest(manifest)]));
  } catch (err) {
    await repository.delete(name).catch(() => undefined);
    throw err;
  }
  return manifest;
}

/**
 * Waits for a repository write and the streams feeding it, and reports the failure that came
 * first: a failing source or stage (the write then fails only as a consequence), else the
 * repository's own error (full, unreachable…), after which the feeding streams are torn down.
 */
async function settleTransfer<T>(writing: Promise<T>, feeding: Promise<void>, tail: Readable): Promise<T> {
  const [written, fed] = await Promise.allSettled([
    writing.catch((err: unknown) => {
      // Without an error argument: the pipeline may have finished already, with no listener left.
      tail.destroy();
      throw err;
    }),
    feeding,
  ]);
  if (written.status === 'fulfilled') {
    if (fed.status === 'rejected') throw fed.reason;
    return written.value;
  }
  const cause = (written.reason as { cause?: unknown }).cause;
  if (fed.status === 'rejected' && (fed.reason === written.reason || fed.reason === cause)) throw fed.reason;
  throw written.reason;
}

/** A meter that fails the stream at its end unless size and SHA-256 match the manifest. */
function checksumGuard(manifest: BackupManifest, where: string): StreamMeter {
  return new StreamMeter({
    hash: true,
    atEnd: (meter) => {
      const problem = checksumProblem(manifest, meter.bytes, meter.sha256());
      if (problem) throw new BackupError('checksum-mismatch', `${where}: ${problem}`);
    },
  });
}

function checksumProblem(manifest: BackupManifest, size: number, sha256: string): string | null {
  if (size !== manifest.sizes.stored) return `${size} bytes stored, the manifest says ${manifest.sizes.stored}`;
  if (sha256 !== manifest.sha256) return `SHA-256 of the stored bytes is ${sha256}, the manifest says ${manifest.sha256}`;
  return null;
}

export interface ReadBackupProps {
  repository: Repository;
  name: string;
  identities: AgeIdentity[];
  /** Receives the plain bytes; complete only when the returned promise resolves. */
  destination: Writable;
}

/**
 * Streams an object back to its plain bytes, checking the SHA-256 and size of the stored bytes,
 * the age authentication of every chunk and zstd's checksum. Rejects, naming the object, on any
 * mismatch; a corrupted object is reported as checksum-mismatch after a verification pass.
 */
export async function readBackupObject(props: ReadBackupProps): Promise<BackupManifest> {
  const { repository, name } = props;
  const where = `object ${name} in repository ${repository.name}`;
  const manifest = await readManifest(repository, name);
  const info = await repository.stat(name);
  if (!info) throw new BackupError('object-not-found', `${where} does not exist (its manifest does)`);
  if (info.size !== manifest.sizes.stored) {
    throw new BackupError('checksum-mismatch', `${where}: ${info.size} bytes stored, the manifest says ${manifest.sizes.stored}`);
  }
  const raw = new StreamMeter({
    atEnd: (meter) => {
      if (manifest.sizes.raw !== null && meter.bytes !== manifest.sizes.raw) {
        throw new BackupError('checksum-mismatch', `${where}: restored ${meter.bytes} bytes, the manifest says ${manifest.sizes.raw}`);
      }
    },
  });
  try {
    await pipeline(
      await repository.get(name),
      checksumGuard(manifest, where),
      createAgeDecryptStream(props.identities),
      createZstdFramesDecompress(),
      raw,
      props.destination,
    );
  } catch (err) {
    const decodeFailure = isBackupError(err, 'age-integrity') || isBackupError(err, 'age-format') || (err as { code?: string }).code?.startsWith('ZSTD_');
    if (decodeFailure) {
      // Tell a corrupted object (stored bytes changed) from one that was written wrong.
      const check = await verifyBackupObject({ repository, name });
      if (!check.ok) throw new BackupError('checksum-mismatch', `${where}: ${check.problem ?? 'corrupted'}`, { cause: err });
    }
    if (err instanceof BackupError && !err.message.includes(where)) throw new BackupError(err.code, `${where}: ${err.message}`, { cause: err });
    throw err;
  }
  return manifest;
}

export interface VerifyResult {
  repository: string;
  object: string;
  ok: boolean;
  manifest: BackupManifest;
  size: number;
  sha256: string;
  /** What differs, when not ok. */
  problem?: string;
}

/**
 * Reads an object's stored bytes and compares them with its manifest: no identity needed, so
 * the server (which holds only recipients) can prove its backups intact.
 */
export async function verifyBackupObject(props: { repository: Repository; name: string }): Promise<VerifyResult> {
  const { repository, name } = props;
  const manifest = await readManifest(repository, name);
  const meter = new StreamMeter({ hash: true });
  await pipeline(await repository.get(name), meter, async (chunks: AsyncIterable<Buffer>) => {
    // Hash only; nothing downstream wants the bytes.
    for await (const _ of chunks);
  });
  const sha256 = meter.sha256();
  const problem = checksumProblem(manifest, meter.bytes, sha256);
  return { repository: repository.name, object: name, ok: problem === null, manifest, size: meter.bytes, sha256, ...(problem ? { problem } : {}) };
}

/**
 * Copies an object and its manifest to another repository, checking the SHA-256 on the way and
 * reading the copy back to verify it. A failed copy leaves nothing behind in the target.
 */
export async function copyBackupObject(props: { from: Repository; to: Repository; name: string }): Promise<VerifyResult> {
  const { from, to, name } = props;
  const manifest = await readManifest(from, name);
  const source = await from.get(name);
  const guard = checksumGuard(manifest, `object ${name} in repository ${from.name}`);
  await settleTransfer(to.put(name, guard), pipeline(source, guard), guard);
  await to.put(manifestName(name), Readable.from([encodeManifest(manifest)]));
  const check = await verifyBackupObject({ repository: to, name });
  if (!check.ok) {
    await to.delete(manifestName(name)).catch(() => undefined);
    await to.delete(name).catch(() => undefined);
    throw new BackupError('checksum-mismatch', `copy of ${name} to repository ${to.name} does not verify: ${check.problem ?? ''}`);
  }
  return check;
}
