import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifySchemaValidationError } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { CreateTaskBody } from './work/tasks/schema.ts';
import { WorkflowBody } from './work/workflows/schema.ts';
import { fieldErrors } from './problem.ts';

function errorsOf(schema: TSchema, value: unknown): FastifySchemaValidationError[] {
  return Compile(schema).Errors(value);
}

describe('fieldErrors', () => {
  test('a value outside an enum is one error naming the allowed values', () => {
    const errors = fieldErrors('body', errorsOf(WorkflowBody, { statuses: [{ name: 'x', category: 'blocked' }], transitions: [] }));
    assert.deepEqual(errors, [{ in: 'body', pointer: '/statuses/0/category', message: 'must be one of: todo, in_progress, done' }]);
  });

  test('a union of types names the types once', () => {
    const errors = fieldErrors('body', errorsOf(Type.Object({ due: Type.Union([Type.String(), Type.Null()]) }), { due: 5 }));
    assert.deepEqual(errors, [{ in: 'body', pointer: '/due', message: 'must be string or null' }]);
  });

  test('other unions list each distinct reason once', () => {
    const errors = fieldErrors('body', errorsOf(CreateTaskBody, { title: 'x', dueDate: '30.01.2030' }));
    const [only, ...rest] = errors;
    assert.ok(only);
    assert.equal(rest.length, 0);
    assert.equal(only.pointer, '/dueDate');
    assert.match(only.message, /format "date".* or .*null/);
  });

  test('errors outside unions are kept as they are, each field once', () => {
    const errors = fieldErrors('body', errorsOf(CreateTaskBody, { title: '', priority: 'whenever', colour: 'red' }));
    assert.deepEqual(
      errors.map((e) => [e.pointer, e.message]),
      [
        ['/colour', 'is not a known field'],
        ['/title', 'must not have fewer than 1 characters'],
        ['/priority', 'must be one of: low, medium, high, urgent'],
      ],
    );
  });
});
