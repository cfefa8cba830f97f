import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ALERT_CODES } from './alerts.ts';

test('every alert code is documented in docs/operations.md, and nothing documented is unknown', () => {
  const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Alerts'));
  assert.ok(section.startsWith('## Alerts'), 'docs/operations.md has an Alerts section');
  const documented = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    for (const match of (line.split('|')[1] ?? '').matchAll(/`([a-z.-]+)`/g)) if (match[1]) documented.add(match[1]);
  }
  for (const code of ALERT_CODES) assert.ok(documented.has(code), `alert code ${code} is not in the Alerts table of docs/operations.md`);
  for (const code of documented) assert.ok((ALERT_CODES as readonly string[]).includes(code), `docs/operations.md lists ${code}, which is not in ALERT_CODES`);
});
