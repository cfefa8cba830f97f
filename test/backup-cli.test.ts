/**
 * `taskflow backup list|show|run|prune` as an operator runs them: the real CLI against a real
 * cluster and repositories, with --json, exit codes, the message when backups are not configured,
 * and progress bars only on a terminal.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CatalogEntry } from '../src/platform/backup/catalog.ts';
import type { ExportResult } from '../src/platform/backup/export.ts';
import type { PruneReport } from '../src/platform/backup/prune.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import { fsRepository, startBackupPlatform, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { runCli, TASKFLOW_BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

describe('taskflow backup', () => {
  let root: string;
  let tp: BackupTestPlatform;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(['backup', ...args], { env, timeoutMs: 120_000 });
  const json = async <T>(...args: string[]): Promise<T> => {
    const res = await cli(...args, '--json');
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout) as T;
  };

  before(async () => {
    root = tempDir('backup-cli');
    for (const dir of ['primary', 'second']) mkdirSync(join(root, dir));
    tp = await startBackupPlatform([fsRepository('primary', join(root, 'primary')), fsRepository('second', join(root, 'second'))]);
    tp.writeConfigFile();
    env = { TASKFLOW_DATA_DIR: tp.dataDir };
    for (const slug of ['acme', 'globex']) await createTenant({ platform: tp.platform, slug, actor: 'test' });
  });
  after(async () => {
    await tp.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  test('run export: one tenant, or all of them; bad usage is exit 2, an unknown tenant exit 3', async () => {
    const [one] = await json<ExportResult[]>('run', 'export', '--tenant', 'acme');
    assert.equal(one?.ok, true);
    assert.equal(one.entry?.tenantSlug, 'acme');
    assert.deepEqual(one.copies.map((c) => [c.repository, c.ok]), [['second', true]]);

    const all = await cli('run', 'export', '--all');
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^exported acme: exports\/acme\/\S+\.dump \(id \d+, .* dumped, .* stored\); copies: second verified$/m);
    assert.match(all.stdout, /^exported globex: /m);
    assert.doesNotMatch(all.stderr, /exporting/, 'no progress bar when stdout is not a terminal');

    const usage: [string[], RegExp][] = [
      [['run', 'export'], /--tenant SLUG, or --all/],
      [['run', 'export', '--all', '--tenant', 'acme'], /not both/],
      [['run', 'everything', '--all'], /must be one of snapshot, export/],
    ];
    for (const [args, message] of usage) {
      const res = await cli(...args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message);
    }
    const missing = await cli('run', 'export', '--tenant', 'nosuch');
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /no tenant 'nosuch'/);
  });

  test('run snapshot: the whole cluster, copied like every object; verify sits beside run', async () => {
    const snapshot = await json<CatalogEntry>('run', 'snapshot');
    assert.equal(snapshot.kind, 'snapshot');
    assert.equal(snapshot.state, 'complete');
    assert.deepEqual(snapshot.locations.map((l) => l.repository), ['primary', 'second']);
    const withTenant = await cli('run', 'snapshot', '--tenant', 'acme');
    assert.equal(withTenant.code, 2);
    assert.match(withTenant.stderr, /whole cluster/);
    const help = await runCli(['backup', '--help'], { env });
    const commands = help.stdout.split('\n').map((line) => /^ {2}([a-z]+) /.exec(line)?.[1]).filter(Boolean);
    assert.deepEqual(commands, ['list', 'show', 'run', 'prune', 'verify', 'help']);
  });

  test('list and show: filters, every catalog field, locations and row counts', async () => {
    const rows = await json<CatalogEntry[]>('list');
    assert.ok(rows.length >= 4);
    assert.ok((await json<CatalogEntry[]>('list', '--kind', 'snapshot')).every((e) => e.kind === 'snapshot'));
    const acme = await json<CatalogEntry[]>('list', '--kind', 'export', '--tenant', 'acme');
    assert.ok(acme.length >= 2 && acme.every((e) => e.tenantSlug === 'acme'));
    assert.deepEqual(await json<CatalogEntry[]>('list', '--state', 'failed'), []);

    const text = await cli('list', '--tenant', 'globex');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID\s+KIND\s+NAME\s+TENANT\s+STATE\s+DATA AT\s+STORED\s+COPIES\s+PROVEN$/m);
    assert.match(text.stdout, /export\s+exports\/globex\/\S+\s+globex\s+complete\s+\S+\s+[\d.]+ kB\s+primary,second/);

    assert.equal((await cli('list', '--kind', 'tape')).code, 2);
    assert.equal((await cli('list', '--tenant', 'nosuch')).code, 3);

    const first = acme[0]!;
    const shown = await json<CatalogEntry>('show', first.id);
    assert.deepEqual(shown, first);
    const byName = await cli('show', first.name);
    assert.equal(byName.code, 0, byName.stderr);
    for (const line of [/^kind:\s+export$/m, /^state:\s+complete$/m, /^sha256:\s+[0-9a-f]{64}$/m, /^locations:\n {2}primary {2}stored \S+ {2}not read back\n {2}second {2}stored \S+ {2}verified \S+$/m, /^row counts:$/m, /^ {2}app\.tasks {2}0$/m, /^proof: -$/m]) {
      assert.match(byName.stdout, line);
    }
    const missing = await cli('show', '999999');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no backup object '999999'/);
  });

  test('verify --object checks every copy of one object, by id or name; an unknown one is exit 3', async () => {
    const [one] = await json<CatalogEntry[]>('list', '--kind', 'export', '--tenant', 'globex');
    for (const ref of [one!.id, one!.name]) {
      const res = await cli('verify', '--object', ref);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /^2 of 2 stored copies match their checksums$/m, 'the primary and the second repository');
    }
    const missing = await cli('verify', '--object', '999999');
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /no backup object '999999'/);
  });

  test('prune --dry-run shows what prune deletes; prune deletes it from every repository', async () => {
    const acme = await json<CatalogEntry[]>('list', '--kind', 'export', '--tenant', 'acme');
    const old = acme[acme.length - 1]!;
    await tp.platform.control.query(`UPDATE backup_objects SET data_at = now() - interval '40 days', started_at = now() - interval '40 days' WHERE id = $1`, [old.id]);

    const dry = await json<PruneReport>('prune', '--dry-run');
    assert.equal(dry.dryRun, true);
    const exports = dry.deleted.filter((d) => d.kind === 'export');
    assert.deepEqual(exports.map((d) => d.name), [old.name]);
    assert.match(exports[0]?.reason ?? '', /older than the 30-day window/);
    // The snapshot taken above makes the WAL archived before it useless: that goes too.
    assert.ok(dry.deleted.every((d) => d.kind === 'export' || (d.kind === 'wal' && /before the WAL the oldest kept snapshot needs/.test(d.reason))), JSON.stringify(dry.deleted));
    for (const repo of ['primary', 'second']) assert.ok(existsSync(join(root, repo, `${old.name}.manifest.json`)), 'a dry run deletes nothing');

    const done = await json<PruneReport>('prune');
    assert.deepEqual(done.deleted.map((d) => [d.name, d.deleted]), dry.deleted.map((d) => [d.name, true]));
    for (const repo of ['primary', 'second']) {
      assert.ok(!existsSync(join(root, repo, old.name)) && !existsSync(join(root, repo, `${old.name}.manifest.json`)), `gone from ${repo}`);
    }
    assert.equal((await cli('show', old.id)).code, 3, 'and from the catalog');
    const again = await cli('prune');
    assert.equal(again.code, 0);
    assert.match(again.stderr, /nothing to prune/);
  });

  test('on a terminal, export, snapshot, verify and prune draw progress bars; their results still print', { skip: spawnSync('script', ['--version']).status === 0 ? false : 'script(1) is not installed' }, async () => {
    // script(1) gives the command a pseudo-terminal, as an operator's shell would.
    const onTerminal = (...args: string[]) => {
      const command = [process.execPath, TASKFLOW_BIN, 'backup', ...args, '--data-dir', tp.dataDir].map((a) => `'${a}'`).join(' ');
      const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' } });
      assert.equal(run.status, 0, run.stdout);
      return run.stdout;
    };
    const exported = onTerminal('run', 'export', '--tenant', 'acme');
    assert.match(exported, /exporting [█░]+ \d+% \| .* of .* \| acme/);
    assert.match(exported, /exported acme: /);

    const snapshot = onTerminal('run', 'snapshot');
    assert.match(snapshot, /snapshot [█░]+ \d+% \| [\d.]+ [kMG]?B of [\d.]+ [kMG]?B \| pg_basebackup/);
    assert.match(snapshot, /snapshot snapshots\/\S+ \(id \d+/);

    const verified = onTerminal('verify');
    const bar = /verifying [█░]+ 100% \| (\d+) of \1 \| \S+/.exec(verified);
    assert.ok(bar, verified);
    assert.ok(Number(bar[1]) >= 4, 'every stored copy of every object is checked');
    assert.ok(verified.includes(`\n${bar[1]} of ${bar[1]} stored copies match their checksums`), verified);

    const [oldest] = (await json<CatalogEntry[]>('list', '--kind', 'export', '--tenant', 'acme')).slice(-1);
    await tp.platform.control.query(`UPDATE backup_objects SET data_at = now() - interval '40 days', started_at = now() - interval '40 days' WHERE id = $1`, [oldest!.id]);
    const pruned = onTerminal('prune');
    assert.match(pruned, /pruning [█░]+ 100% \| (\d+) of \1 \| \S+/);
    assert.ok(pruned.split('\n').some((line) => line.includes(oldest!.name) && /\bdeleted\b/.test(line)), pruned);
  });

  test('without repositories: run and prune say backups are not configured (exit 2); list says so too', async () => {
    // The same data directory, read with a configuration that has no backup section.
    const bare = join(root, 'bare.json');
    writeFileSync(bare, '{}');
    for (const args of [['run', 'export', '--all'], ['prune'], ['prune', '--dry-run']]) {
      const res = await cli(...args, '--config', bare);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, /backups are not configured: add at least one repository/);
    }
    const list = await cli('list', '--kind', 'wal', '--state', 'running', '--config', bare);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /no backup objects; backups are not configured/);
  });
});
