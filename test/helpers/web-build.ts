/**
 * The web app's build for the suites that serve it: web/dist is rebuilt (npm run build:web) when it
 * is missing or older than a source of the app, like scripts/bootstrap.sh does. Suites may run at
 * the same time, so one process builds at a time (a lock directory), into a directory of its own
 * that then replaces web/dist: a server never sees a half-written build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
const DIST = join(WEB, 'dist');
const LOCK = join(WEB, 'dist.lock');
const STALE_LOCK_MS = 120_000;

/** The newest modification time of the app's sources, its build configuration and the installed dependencies. */
function newestSource(): number {
  let newest = 0;
  const visit = (path: string) => {
    const stat = statSync(path);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
    else newest = Math.max(newest, stat.mtimeMs);
  };
  for (const entry of ['src', 'index.html', 'vite.config.ts', 'tsconfig.json', '../package-lock.json']) if (existsSync(join(WEB, entry))) visit(join(WEB, entry));
  return newest;
}

function fresh(): boolean {
  const index = join(DIST, 'index.html');
  return existsSync(index) && statSync(index).mtimeMs >= newestSource();
}

async function lock(): Promise<void> {
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock left by a build that died.
      const held = statSync(LOCK, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      await sleep(200);
    }
  }
}

/** Makes sure web/dist holds a build of the current sources. */
export async function ensureWebBuilt(): Promise<void> {
  if (fresh()) return;
  await lock();
  try {
    if (fresh()) return;
    const outDir = join(WEB, `dist.build-${process.pid}`);
    const vite = fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url));
    const run = spawnSync(process.execPath, [vite, 'build', WEB, '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { encoding: 'utf8', timeout: 120_000 });
    if (run.status !== 0) throw new Error(`building the web app failed (npm run build:web):\n${run.stdout}${run.stderr}`);
    const old = join(WEB, `dist.old-${process.pid}`);
    if (existsSync(DIST)) renameSync(DIST, old);
    renameSync(outDir, DIST);
    rmSync(old, { recursive: true, force: true });
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
