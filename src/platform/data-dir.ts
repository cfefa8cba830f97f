/**
 * The data directory: state file, secrets and (when managed) the PostgreSQL cluster.
 *
 *   <dataDir>/state.json          what was initialised, and the managed cluster's port
 *   <dataDir>/taskflow.pid        the running server's pid, while `taskflow start` runs
 *   <dataDir>/secrets/            0700; master.key and the cluster superuser's password, 0600
 *   <dataDir>/postgres/main/      PGDATA of the managed cluster (owned by the postgres OS user as root)
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

export const STATE_VERSION = 1;

export interface DataDirState {
  version: number;
  /** False until the first initialisation finished; a false state may be cleaned up and redone. */
  initialised: boolean;
  createdAt: string;
  managed: { port: number; pgMajor: number } | null;
}

export interface DataDir {
  root: string;
  statePath: string;
  secretsDir: string;
  pgData: string;
}

export function dataDirLayout(root: string): DataDir {
  return {
    root,
    statePath: join(root, 'state.json'),
    secretsDir: join(root, 'secrets'),
    pgData: join(root, 'postgres', 'main'),
  };
}

/**
 * What may be in the data directory before its state file exists: the user's configuration, and
 * what TaskFlow itself writes before the state file (the server lock and the secrets directory).
 */
const ALLOWED_BEFORE_INIT = new Set(['config.json', 'taskflow.pid', 'secrets']);

/** Reads the state file; null when the directory was never initialised by TaskFlow. */
export function readState(dir: DataDir): DataDirState | null {
  if (!existsSync(dir.statePath)) return null;
  try {
    const state = JSON.parse(readFileSync(dir.statePath, 'utf8')) as DataDirState;
    if (typeof state.version !== 'number' || typeof state.initialised !== 'boolean') throw new Error('missing fields');
    if (state.version > STATE_VERSION) {
      throw new UserError(`${dir.root} was written by a newer TaskFlow (state version ${state.version}); upgrade TaskFlow`);
    }
    return state;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${dir.statePath} is damaged (${(err as Error).message}); restore it from a backup or move the data directory away`);
  }
}

export function writeState(dir: DataDir, state: DataDirState): void {
  const tmp = `${dir.statePath}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, dir.statePath);
}

/**
 * Checks the data directory is ours to use: owned by this user (unless root), and either a TaskFlow
 * data directory or empty. Creates it when missing.
 */
export function prepareDataDir(dir: DataDir): void {
  if (existsSync(dir.root)) {
    const st = statSync(dir.root);
    if (!st.isDirectory()) throw new UserError(`data directory ${dir.root} is not a directory`);
    const uid = process.getuid?.();
    if (uid !== undefined && uid !== 0 && st.uid !== uid) {
      throw new UserError(
        `data directory ${dir.root} belongs to another user (uid ${st.uid}); run TaskFlow as that user or choose another --data-dir`,
      );
    }
    if (!existsSync(dir.statePath)) {
      const foreign = readdirSync(dir.root).filter((f) => !ALLOWED_BEFORE_INIT.has(f));
      if (foreign.length > 0) {
        throw new UserError(
          `data directory ${dir.root} is not empty and is not a TaskFlow data directory (found ${foreign.slice(0, 3).join(', ')}); choose an empty or new --data-dir`,
        );
      }
    }
  } else {
    mkdirSync(dir.root, { recursive: true, mode: 0o711 });
  }
  // PostgreSQL's OS user must be able to pass through to postgres/main; nothing is listable.
  if (process.getuid?.() === 0) chmodSync(dir.root, 0o711);
  mkdirSync(dir.secretsDir, { recursive: true, mode: 0o700 });
  chmodSync(dir.secretsDir, 0o700);
}

/** Reads a secret file, creating it with fresh random bytes the first time. */
export function ensureSecret(dir: DataDir, name: string, bytes = 32): string {
  const path = join(dir.secretsDir, name);
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length < 16) throw new UserError(`secret ${path} is damaged (too short)`);
    return value;
  }
  const value = randomBytes(bytes).toString('base64url');
  writeFileSync(path, value + '\n', { mode: 0o600, flag: 'wx' });
  return value;
}

export function readSecret(dir: DataDir, name: string): string | null {
  const path = join(dir.secretsDir, name);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : null;
}

/** Whether `pid` is a live TaskFlow process (a reused pid of some other program does not count). */
function taskflowAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('taskflow');
  } catch {
    return true;
  }
}

/**
 * Claims the data directory for one running server (`<dataDir>/taskflow.pid`), so a second
 * `taskflow start` cannot adopt, and later stop, the first one's PostgreSQL. A lock left by a
 * process that no longer runs is taken over. Returns the release function.
 */
export function acquireServerLock(dir: DataDir): () => void {
  const path = join(dir.root, 'taskflow.pid');
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && taskflowAlive(holder)) {
        throw new UserError(`TaskFlow is already running from ${dir.root} (pid ${holder}); stop it first or use another --data-dir`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new UserError(`could not claim ${path}`);
}
