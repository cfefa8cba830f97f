#!/usr/bin/env node
// The `taskflow` command. TaskFlow's sources are TypeScript that Node.js 24 runs directly;
// when an older Node is first on PATH, re-run under the Node 24 that scripts/bootstrap.sh installs.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
  await import(join(root, 'src', 'main.ts'));
} else {
  const local = join(root, '.tools', 'node', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(local)) {
    process.stderr.write(
      `taskflow needs Node.js 24 or newer (this is ${process.version}). Run scripts/bootstrap.sh once, or install Node.js 24 LTS.\n`,
    );
    process.exit(1);
  }
  const child = spawn(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Pass stop signals on, so `kill` of this wrapper stops TaskFlow cleanly.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
