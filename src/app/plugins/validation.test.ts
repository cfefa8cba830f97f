import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifySchemaValidationError } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { Limit } from '../work/pagination.ts';
import { validatorCompiler } from './validation.ts';

const Query = Type.Object({ limit: Type.Optional(Limit), status: Type.Optional(Type.String()) }, { additionalProperties: false });

function compile(schema: TSchema, httpPart: string): (value: unknown) => { value?: unknown; error?: FastifySchemaValidationError[] } {
  const definition: Parameters<typeof validatorCompiler>[0] = { schema, httpPart, method: 'GET', url: '/x' };
  return validatorCompiler(definition) as (value: unknown) => { value?: unknown; error?: FastifySchemaValidationError[] };
}

describe('query parameters', () => {
  const validate = compile(Query, 'querystring');

  test('an integer written in decimal digits is converted', () => {
    assert.deepEqual(validate({ limit: '20' }), { value: { limit: 20 } });
    assert.deepEqual(validate({ limit: '007' }), { value: { limit: 7 } });
    assert.deepEqual(validate({ status: '12' }), { value: { status: '12' } }, 'strings stay strings');
  });

  test('fractions, exponents, hex and padding are refused, not rounded or parsed', () => {
    for (const limit of ['2.5', '100.5', '1e1', '0x2', '+5', ' 5', '5 ', '', 'Infinity', '1_0']) {
      const result = validate({ limit });
      assert.equal(result.value, undefined, limit);
      assert.deepEqual(result.error?.map((e) => [e.instancePath, e.message]), [['/limit', 'must be a whole number written in decimal digits']], limit);
    }
  });

  test('digits out of range fail the range check, with the bound', () => {
    assert.equal(validate({ limit: '101' }).error?.[0]?.message, 'must be <= 100');
    assert.equal(validate({ limit: '-1' }).error?.[0]?.message, 'must be >= 1');
    assert.equal(validate({ limit: '0' }).error?.[0]?.message, 'must be >= 1');
  });

  test('a parameter given twice is refused', () => {
    assert.ok(validate({ limit: ['1', '2'] }).error);
  });
});

describe('bodies', () => {
  test('are checked as sent: a number in a string is not converted', () => {
    const validate = compile(Type.Object({ n: Type.Integer() }), 'body');
    assert.deepEqual(validate({ n: 3 }), { value: { n: 3 } });
    assert.ok(validate({ n: '3' }).error);
    assert.ok(validate({ n: 2.5 }).error);
  });
});
