/**
 * The manifest written beside every backup object, after the object itself: what it is, its
 * sizes at each stage, the SHA-256 of the stored bytes and whom it is encrypted to. An object
 * without a manifest is an interrupted write, never a backup.
 */
import Type from 'typebox';
import Value from 'typebox/value';
import { BackupError } from './errors.ts';
import { checkObjectName } from './object-names.ts';
import type { Repository } from './repository.ts';

export const MANIFEST_FORMAT = 'taskflow-backup-manifest/v1';
export const MANIFEST_SUFFIX = '.manifest.json';
const MAX_MANIFEST_BYTES = 1024 * 1024;

const Size = Type.Integer({ minimum: 0 });
const SourceValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);

export const ManifestSchema = Type.Object(
  {
    format: Type.Literal(MANIFEST_FORMAT),
    /** The data object's name in the repository. */
    object: Type.String({ minLength: 1 }),
    /** What the object holds: `snapshot`, `wal`, `export`, … */
    kind: Type.String({ pattern: '^[a-z][a-z0-9-]*$', maxLength: 40 }),
    created: Type.String({ format: 'date-time' }),
    /** `raw` is null when the source came compressed (a snapshot pg_basebackup compressed itself). */
    sizes: Type.Object({ raw: Type.Union([Size, Type.Null()]), compressed: Size, stored: Size }, { additionalProperties: false }),
    /** SHA-256 (hex) of the stored bytes: what a repository holds, checkable without the key. */
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    compression: Type.Object({ algorithm: Type.Literal('zstd'), level: Type.Integer() }, { additionalProperties: false }),
    encryption: Type.Object(
      {
        format: Type.Literal('age-encryption.org/v1'),
        /** Fingerprints of the recipients (see recipientFingerprint); one of their identities opens it. */
        recipients: Type.Array(Type.String({ pattern: '^sha256:[0-9a-f]{16}$' }), { minItems: 1 }),
      },
      { additionalProperties: false },
    ),
    /** Where the bytes came from (cluster, database, tenant, LSN, tool versions…). */
    source: Type.Record(Type.String(), SourceValue),
  },
  { additionalProperties: false },
);

export type BackupManifest = Type.Static<typeof ManifestSchema>;
export type SourceDetails = BackupManifest['source'];

/** The manifest's object name for a data object. */
export function manifestName(object: string): string {
  return `${object}${MANIFEST_SUFFIX}`;
}

export function encodeManifest(manifest: BackupManifest): Buffer {
  return Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
}

/** Parses and checks a manifest; `where` names it in errors. */
export function parseManifest(bytes: Buffer, expectedObject: string, where: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BackupError('manifest-invalid', `${where}: the manifest is not JSON (${(err as Error).message})`);
  }
  if (!Value.Check(ManifestSchema, value)) {
    const first = [...Value.Errors(ManifestSchema, value)][0];
    throw new BackupError('manifest-invalid', `${where}: the manifest is not valid (${first ? `${first.instancePath || '/'} ${first.message}` : 'unknown'})`);
  }
  if (value.object !== expectedObject) {
    throw new BackupError('manifest-invalid', `${where}: the manifest describes ${value.object}, not ${expectedObject}`);
  }
  checkObjectName(value.object);
  return value;
}

/** Reads the manifest of `object` from a repository. */
export async function readManifest(repository: Repository, object: string): Promise<BackupManifest> {
  const where = `object ${object} in repository ${repository.name}`;
  let stream;
  try {
    stream = await repository.get(manifestName(object));
  } catch (err) {
    if (err instanceof BackupError && err.code === 'object-not-found') {
      throw new BackupError('object-not-found', `${where} has no manifest (it does not exist, or its write was interrupted)`);
    }
    throw err;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_MANIFEST_BYTES) {
      stream.destroy();
      throw new BackupError('manifest-invalid', `${where}: the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return parseManifest(Buffer.concat(chunks), object, where);
}
