/** The one small interface every backup repository driver implements (filesystem, SFTP, S3). */
import type { Readable } from 'node:stream';

export type RepositoryKind = 'filesystem' | 'sftp' | 's3';

/** Where a repository is, for the placement rules of P3: backups stay inside allowed jurisdictions. */
export interface RepositoryPlacement {
  /** Unique name in the configuration (`primary`, `offsite-sftp`). */
  name: string;
  /** Free-form region or site (`eu-central`, `fra1`, `office-basement`). */
  region: string;
  /** ISO 3166-1 alpha-2 country code, optionally with a subdivision (`DE`, `CH-ZH`). */
  jurisdiction: string;
}

export interface ObjectInfo {
  name: string;
  size: number;
  modified: Date;
}

export interface RepositoryHealth {
  ok: boolean;
  /** Bytes available to us, when the repository can tell. */
  freeBytes?: number;
  totalBytes?: number;
  /** Why it is not ok. */
  message?: string;
}

export interface Repository extends RepositoryPlacement {
  readonly kind: RepositoryKind;
  /** Where it is, for messages (`/srv/backup`, `sftp://backup@host:22/srv/backup`); holds no secret. */
  readonly location: string;
  /**
   * Stores `data` under `name`, atomically: readers see the old object or the complete new one,
   * never a part. Resolves once the bytes are durable; returns how many were written.
   */
  put(name: string, data: Readable): Promise<{ size: number }>;
  /** The object's bytes as a stream; rejects with object-not-found when it does not exist. */
  get(name: string): Promise<Readable>;
  /** Size and time of one object, or null when it does not exist. */
  stat(name: string): Promise<ObjectInfo | null>;
  /** Objects whose names start with `prefix`, sorted by name; temporary files are never listed. */
  list(prefix?: string): Promise<ObjectInfo[]>;
  /** Removes an object; resolves false when there was none. */
  delete(name: string): Promise<boolean>;
  /** Whether the repository is reachable and writable-looking, and how much space it has. */
  probe(): Promise<RepositoryHealth>;
  /** Releases connections the driver keeps (SFTP keeps one open briefly between operations). */
  close(): Promise<void>;
}
