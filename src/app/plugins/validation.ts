/**
 * Input and output checking with the routes' TypeBox schemas.
 *
 * Input: TypeBox's compiled checks instead of Ajv. Bodies are checked exactly as sent (no type
 * coercion, nothing removed: an unknown field is a 400 because every schema says
 * additionalProperties: false); path and query parameters, which are strings on the wire, are
 * converted to the schema's types first.
 *
 * Output: each response is checked against the schema declared for its status before it is
 * written, so a handler cannot send a field the contract does not name; a mismatch is a 500.
 */
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySerializerCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import type { App } from '../app.ts';

/** Fastify's Ajv settings, should any schema ever be compiled by Ajv instead of TypeBox. */
export const AJV_OPTIONS = { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, useDefaults: false } } as const;

const checkedSerializer: FastifySerializerCompiler<TSchema> = ({ schema, method, url, httpStatus }) => {
  const check = Compile(schema);
  return (data: unknown) => {
    if (!check.Check(data)) {
      const first = check.Errors(data)[0];
      throw new Error(`response to ${method} ${url} (${httpStatus}) does not match its schema: ${first?.instancePath ?? ''} ${first?.message ?? ''}`);
    }
    return JSON.stringify(data);
  };
};

export function installValidation(app: App): void {
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setSerializerCompiler(checkedSerializer);
}
