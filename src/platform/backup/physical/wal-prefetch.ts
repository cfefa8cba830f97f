/**
 * Fetching archived WAL ahead of a recovery. PostgreSQL asks restore_command for one file at a
 * time, and a `taskflow wal fetch` process per file costs a Node.js start each time; so while a
 * restore runs, the restoring process itself decrypts the segments it knows recovery will want,
 * in order and a few at a time, into a spool directory, and restore_command takes a file from
 * there when it is ready (a `mv`, no process of ours), falling back to `taskflow wal fetch` for
 * anything else. The spool holds at most `window` files: a file PostgreSQL took makes room for
 * the next. A failed prefetch is only logged: the fallback fetches that file and reports properly.
 */
import { chownSync, createWriteStream, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { OsIdentity } from '../../postgres/tools.ts';
import type { AgeIdentity } from '../age-keys.ts';
import { readBackupObject } from '../pipeline.ts';
import type { Repository } from '../repository.ts';

export interface PrefetchProps {
  repository: Repository;
  identities: AgeIdentity[];
  /** The objects to fetch, in the order recovery reads them: name in the repository, WAL file name. */
  files: { name: string; file: string }[];
  spoolDir: string;
  runAs: OsIdentity | null;
  /** Files in the spool or on their way at most (default 8), fetched two at a time. */
  window?: number;
  log?: Logger;
}

export class WalPrefetcher {
  readonly #props: PrefetchProps;
  readonly #window: number;
  #next = 0;
  #inFlight = new Set<Promise<void>>();
  #stopped = false;
  #loop: Promise<void> | null = null;
  /** Files delivered to the spool (whether PostgreSQL took them yet or not). */
  delivered = 0;

  constructor(props: PrefetchProps) {
    this.#props = props;
    this.#window = props.window ?? 8;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
  }

  #waiting(): number {
    try {
      return readdirSync(this.#props.spoolDir).filter((n) => !n.startsWith('.')).length;
    } catch {
      return 0;
    }
  }

  async #run(): Promise<void> {
    const { files } = this.#props;
    while (!this.#stopped && this.#next < files.length) {
      if (this.#inFlight.size < 2 && this.#waiting() + this.#inFlight.size < this.#window) {
        const item = files[this.#next++];
        if (!item) break;
        const job = this.#fetch(item).finally(() => this.#inFlight.delete(job));
        this.#inFlight.add(job);
        continue;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #fetch(item: { name: string; file: string }): Promise<void> {
    const { spoolDir, runAs } = this.#props;
    const temp = join(spoolDir, `.${item.file}.prefetch`);
    try {
      await readBackupObject({ repository: this.#props.repository, name: item.name, identities: this.#props.identities, destination: createWriteStream(temp, { mode: 0o600 }) });
      // PostgreSQL's restore_command runs as its OS user: the file must be that user's to read.
      if (runAs) chownSync(temp, runAs.uid, runAs.gid);
      if (this.#stopped) return;
      renameSync(temp, join(spoolDir, item.file));
      this.delivered++;
    } catch (err) {
      this.#props.log?.warn({ file: item.file, err: err instanceof Error ? err.message : String(err) }, 'WAL prefetch failed; restore_command fetches it itself');
    } finally {
      if (existsSync(temp)) rmSync(temp, { force: true });
    }
  }
}
