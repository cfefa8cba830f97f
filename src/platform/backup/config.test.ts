import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../../config.ts';
import { generateIdentity } from './age-keys.ts';
import { backupPlacementWarnings, openRepositories } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'tf-backup-config-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const keys = generateIdentity();
const sftp = {
  name: 'offsite',
  kind: 'sftp',
  region: 'nbg1',
  jurisdiction: 'DE',
  host: 'backup.example.de',
  user: 'taskflow',
  path: '/backups',
  identityFile: '/etc/taskflow/backup_ed25519',
  knownHostsFile: '/etc/taskflow/known_hosts',
};
const local = { name: 'local', kind: 'filesystem', region: 'fra1', jurisdiction: 'DE', path: '/srv/backup' };

function load(backup: unknown): ReturnType<typeof loadConfig> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ backup }));
  return loadConfig({ env: {}, configFile: file });
}

function refused(backup: unknown, pattern: RegExp): string {
  let message = '';
  assert.throws(
    () => load(backup),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      message = err.message;
      // Each problem names where the value came from; the patterns here are about the problem itself.
      assert.match(err.message.replace(/ \(from config file [^)]*\)/g, ''), pattern);
      return true;
    },
  );
  return message;
}

test('no backup section: no repositories, nothing refused', () => {
  const config = loadConfig({ env: {} });
  assert.deepEqual(config.backup.repositories, []);
  assert.deepEqual(config.backup.allowedJurisdictions, []);
  assert.equal(config.backup.compressionLevel, 3);
});

test('a valid configuration opens its repositories, the primary first', () => {
  const config = load({ allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [local, sftp], primary: 'offsite' });
  const { primary, secondaries } = openRepositories(config.backup);
  assert.ok(primary);
  assert.equal(primary.name, 'offsite');
  assert.equal(primary.kind, 'sftp');
  assert.equal(primary.location, 'sftp://taskflow@backup.example.de:22/backups');
  assert.deepEqual(
    secondaries.map((r) => [r.name, r.kind, r.jurisdiction, r.region]),
    [['local', 'filesystem', 'DE', 'fra1']],
  );
});

test('a repository outside the allowed jurisdictions is refused, naming the key', () => {
  const message = refused(
    { allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [local, { ...sftp, jurisdiction: 'US', region: 'us-east-1' }] },
    /backup\.repositories\.1\.jurisdiction: repository 'offsite' is in US, outside backup\.allowedJurisdictions \(DE\)/,
  );
  assert.doesNotMatch(message, /repositories\.0/);
  refused({ recipients: [keys.recipient], repositories: [local] }, /backup\.allowedJurisdictions: list the jurisdictions/);
  refused({ allowedJurisdictions: ['Germany'], recipients: [keys.recipient], repositories: [local] }, /backup\.allowedJurisdictions\/0|backup\.allowedJurisdictions\.0/);
});

test('a country allowed admits its subdivisions; a subdivision allowed admits only itself', () => {
  const bavaria = { ...sftp, jurisdiction: 'DE-BY' };
  assert.equal(load({ allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [local, bavaria] }).backup.repositories[1]?.jurisdiction, 'DE-BY');
  const onlyBavaria = { allowedJurisdictions: ['DE-BY'], recipients: [keys.recipient] };
  assert.equal(load({ ...onlyBavaria, repositories: [bavaria] }).backup.repositories.length, 1);
  refused({ ...onlyBavaria, repositories: [bavaria, local] }, /backup\.repositories\.1\.jurisdiction: repository 'local' is in DE, outside backup\.allowedJurisdictions \(DE-BY\)/);
  refused({ ...onlyBavaria, repositories: [bavaria, { ...local, jurisdiction: 'DE-BE' }] }, /repository 'local' is in DE-BE, outside/);
  refused({ allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [{ ...local, jurisdiction: 'DK-84' }] }, /repository 'local' is in DK-84, outside/);
});

test('placement warns when backups have no secondary, or none outside the primary\'s region (P8), and refuses neither', () => {
  const base = { allowedJurisdictions: ['DE'], recipients: [keys.recipient] };
  assert.deepEqual(backupPlacementWarnings(load(base).backup), [], 'no repositories: start warns about that apart');
  const [alone, ...more] = backupPlacementWarnings(load({ ...base, repositories: [local] }).backup);
  assert.equal(more.length, 0);
  assert.match(alone ?? '', /^backup\.repositories: 'local' \(region fra1\) is the only repository: backups have no copy offsite or in another region \(P8\).*docs\/backups\.md/);
  const sameRegion = backupPlacementWarnings(load({ ...base, repositories: [local, { ...sftp, region: 'FRA1' }] }).backup);
  assert.equal(sameRegion.length, 1);
  assert.match(sameRegion[0] ?? '', /every repository \(local, offsite\) is in the primary's region fra1/);
  assert.deepEqual(backupPlacementWarnings(load({ ...base, repositories: [local, sftp] }).backup), [], 'a secondary in nbg1');
  // The primary is the one named, not the first: here the two fra1 repositories are both beside it.
  const named = { ...base, primary: 'offsite', repositories: [local, { ...sftp, region: 'fra1' }, { ...local, name: 'archive', path: '/srv/archive' }] };
  assert.match(backupPlacementWarnings(load(named).backup)[0] ?? '', /every repository \(local, offsite, archive\) is in the primary's region fra1/);
  assert.deepEqual(backupPlacementWarnings(load({ ...named, repositories: [local, sftp] }).backup), [], 'offsite (nbg1) is the primary, local (fra1) elsewhere');
  assert.match(backupPlacementWarnings(load({ ...base, primary: 'offsite', repositories: [sftp] }).backup)[0] ?? '', /'offsite' \(region nbg1\) is the only repository/);
});

test('a secret key is never accepted as configuration, and never echoed', () => {
  const message = refused(
    { allowedJurisdictions: ['DE'], recipients: [keys.identity], repositories: [local] },
    /backup\.recipients\.0: an age identity .* where a recipient .* belongs; the server holds only recipients/,
  );
  assert.ok(!message.includes(keys.identity.slice(16)), 'the secret is not in the message');
  refused({ allowedJurisdictions: ['DE'], recipients: [`${keys.recipient.slice(0, -1)}x`], repositories: [local] }, /backup\.recipients\.0: not an age recipient/);
  refused({ allowedJurisdictions: ['DE'], repositories: [local] }, /backup\.recipients: at least one age recipient/);
  refused({ identity: keys.identity }, /backup\.identity.*unknown key/);
});

test('repository fields are checked per kind, names are unique, the primary exists', () => {
  const base = { allowedJurisdictions: ['DE'], recipients: [keys.recipient] };
  refused({ ...base, repositories: [{ ...sftp, identityFile: undefined }] }, /backup\.repositories\.0\.identityFile: required for an sftp repository/);
  refused({ ...base, repositories: [{ ...sftp, knownHostsFile: undefined }] }, /backup\.repositories\.0\.knownHostsFile: required/);
  refused({ ...base, repositories: [{ ...local, host: 'x' }] }, /backup\.repositories\.0\.host: only sftp repositories take it/);
  refused({ ...base, repositories: [local, { ...sftp, name: 'local' }] }, /backup\.repositories\.1\.name: 'local' is used by another repository/);
  refused({ ...base, repositories: [local], primary: 'elsewhere' }, /backup\.primary: names no repository \('elsewhere'\)/);
  refused({ ...base, repositories: [{ ...sftp, host: '-oProxyCommand=evil' }] }, /backup\.repositories\.0\.host/);
  refused({ ...base, repositories: [{ ...sftp, password: 'x' }] }, /backup\.repositories\.0\.password.*unknown key/);
});

test('caFile is for s3 repositories only', () => {
  refused({ allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [{ ...local, caFile: '/etc/taskflow/s3-ca.pem' }] }, /caFile: only s3 repositories take it/);
});
