import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allows, mayDeleteComment, mayEditComment, mayUseTransition, ROLES, RULES, type CommentAuthor, type Permission, type Role, type WorkActor } from './policies.ts';

/** The whole table, written out: a change to a rule must change this test too. */
const EXPECTED: Record<Permission, Role[]> = {
  public: ['viewer', 'member', 'admin', 'owner'],
  'account.self': ['viewer', 'member', 'admin', 'owner'],
  'work.read': ['viewer', 'member', 'admin', 'owner'],
  'work.write': ['member', 'admin', 'owner'],
  'projects.manage': ['admin', 'owner'],
  'workflows.manage': ['admin', 'owner'],
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

test('API tokens read and write work as a member would, and manage nothing', () => {
  const token = { kind: 'token' as const };
  assert.deepEqual(
    (Object.keys(RULES) as Permission[]).filter((p) => allows(p, token)),
    ['public', 'work.read', 'work.write'],
  );
});

const ACTORS: [string, WorkActor][] = [
  ...ROLES.map((role): [string, WorkActor] => [role, { kind: 'user', id: `id-${role}`, role }]),
  ['api-token', { kind: 'api-token' }],
  ['system', { kind: 'system' }],
];

test('transitions limited to roles: the whole table', () => {
  const limits: [string, Role[] | null][] = [
    ['not limited', null],
    ['member', ['member']],
    ['admin, owner', ['admin', 'owner']],
    ['owner', ['owner']],
  ];
  const table = Object.fromEntries(limits.map(([name, roles]) => [name, ACTORS.filter(([, actor]) => mayUseTransition(actor, roles)).map(([who]) => who)]));
  assert.deepEqual(table, {
    // Viewers never get this far (work.write), so "not limited" admits them here without harm.
    'not limited': ['viewer', 'member', 'admin', 'owner', 'api-token', 'system'],
    member: ['member', 'api-token'],
    'admin, owner': ['admin', 'owner', 'system'],
    owner: ['owner', 'system'],
  });
});

test('comments: the author edits; the author or an admin deletes', () => {
  const authors: [string, CommentAuthor][] = [
    ['member', { kind: 'user', id: 'id-member' }],
    ['api-token', { kind: 'api-token' }],
  ];
  const edit = Object.fromEntries(authors.map(([name, author]) => [name, ACTORS.filter(([, a]) => mayEditComment(a, author)).map(([who]) => who)]));
  const remove = Object.fromEntries(authors.map(([name, author]) => [name, ACTORS.filter(([, a]) => mayDeleteComment(a, author)).map(([who]) => who)]));
  assert.deepEqual(edit, { member: ['member'], 'api-token': ['api-token'] });
  assert.deepEqual(remove, { member: ['member', 'admin', 'owner', 'system'], 'api-token': ['admin', 'owner', 'api-token', 'system'] });
});
