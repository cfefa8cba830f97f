import assert from 'node:assert/strict';
import { test } from 'node:test';
import { operationIdOf, tagOf, TAGS } from './document.ts';

test('each route is tagged by its resource, and every tag is declared', () => {
  const cases: [string, string][] = [
    ['/api/projects', 'projects'],
    ['/api/projects/:id', 'projects'],
    ['/api/projects/:id/workflow', 'workflows'],
    ['/api/projects/:id/tasks', 'tasks'],
    ['/api/projects/:id/labels', 'tasks'],
    ['/api/tasks/:id/move', 'tasks'],
    ['/api/tasks/:id/history', 'tasks'],
    ['/api/tasks/:id/comments/:commentId', 'comments'],
    ['/api/people', 'people'],
    ['/api/auth/login/second-factor', 'auth'],
    ['/api/settings/accounts', 'settings'],
    ['/api/openapi.json', 'reference'],
    ['/api/reference.css', 'reference'],
    ['/healthz', 'health'],
    ['/problems/:code', 'problems'],
  ];
  const declared = new Set(TAGS.map((t) => t.name));
  for (const [url, tag] of cases) {
    assert.equal(tagOf(url), tag, url);
    assert.ok(declared.has(tag), tag);
  }
});

test('operation ids read as method and path', () => {
  assert.equal(operationIdOf('GET', '/api/tasks/:id/comments'), 'getTasksByIdComments');
  assert.equal(operationIdOf('PATCH', '/api/tasks/:id/comments/:commentId'), 'patchTasksByIdCommentsByCommentId');
  assert.equal(operationIdOf('POST', '/api/auth/password-reset/complete'), 'postAuthPasswordResetComplete');
  assert.equal(operationIdOf('GET', '/api/openapi.json'), 'getOpenapiJson');
});
