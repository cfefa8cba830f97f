import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allows, ROLES, RULES, type Permission, type Role } from './policies.ts';

/** The whole table, written out: a change to a rule must change this test too. */
const EXPECTED: Record<Permission, Role[]> = {
  public: ['viewer', 'member', 'admin', 'owner'],
  'account.self': ['viewer', 'member', 'admin', 'owner'],
  'work.read': ['viewer', 'member', 'admin', 'owner'],
  'work.write': ['member', 'admin', 'owner'],
  'users.manage': ['admin', 'owner'],
  'settings.manage': ['owner'],
};

for (const permission of Object.keys(RULES) as Permission[]) {
  test(`${permission}: ${EXPECTED[permission].join(', ')}`, () => {
    assert.deepEqual(
      ROLES.filter((role) => allows(permission, { kind: 'user', role })),
      EXPECTED[permission],
    );
  });
}

test('API tokens read and write work, and nothing about accounts', () => {
  const token = { kind: 'token' as const };
  assert.deepEqual(
    (Object.keys(RULES) as Permission[]).filter((p) => allows(p, token)),
    ['public', 'work.read', 'work.write'],
  );
});
