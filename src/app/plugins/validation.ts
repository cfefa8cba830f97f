/**
 * Input and output checking with the routes' TypeBox schemas.
 *
 * Input: TypeBox's compiled checks instead of Ajv. Bodies are checked exactly as sent (no type
 * coercion, nothing removed: an unknown field is a 400 because every schema says
 * additionalProperties: false); path and query parameters, which are strings on the wire, are
 * converted to the schema's types first. An integer parameter must be written as decimal digits:
 * TypeBox's conversion alone would read `2.5` as 2 and `1e1` or `0x2` as numbers.
 *
 * Output: each response is checked against the schema declared for its status before it is
 * written, so a handler cannot send a field the contract does not name; a mismatch is a 500.
 */
import type { FastifySchemaCompiler, FastifySchemaValidationError, FastifySerializerCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import type { App } from '../app.ts';

/** Fastify's Ajv settings, should any schema ever be compiled by Ajv instead of TypeBox. */
export const AJV_OPTIONS = { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, useDefaults: false } } as const;

/** An optional minus sign and decimal digits: no fraction, exponent, hex, sign `+` or spaces. */
const DECIMAL_INTEGER = /^-?[0-9]+$/;

/** The names of the integer-typed properties of an object schema (parameters are flat objects). */
function integerProperties(schema: TSchema): string[] {
  const properties = (schema as { properties?: unknown }).properties;
  if (typeof properties !== 'object' || properties === null) return [];
  return Object.entries(properties as Record<string, { type?: unknown }>)
    .filter(([, property]) => property.type === 'integer')
    .map(([name]) => name);
}

/** Errors for integer parameters whose text is not plain decimal digits, before conversion can hide it. */
function nonDecimalIntegers(value: unknown, names: string[]): FastifySchemaValidationError[] {
  if (typeof value !== 'object' || value === null) return [];
  const errors: FastifySchemaValidationError[] = [];
  for (const name of names) {
    const raw: unknown = (value as Record<string, unknown>)[name];
    if (typeof raw === 'string' && !DECIMAL_INTEGER.test(raw)) {
      errors.push({ keyword: 'type', instancePath: `/${name}`, schemaPath: `#/properties/${name}`, params: { type: 'integer' }, message: 'must be a whole number written in decimal digits' });
    }
  }
  return errors;
}

/** Compiles a route's schema for one part of the request (body, querystring, params, headers). */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const fromText = httpPart !== 'body';
  const integers = fromText ? integerProperties(schema) : [];
  return (value: unknown) => {
    const notDecimal = nonDecimalIntegers(value, integers);
    if (notDecimal.length > 0) return { error: notDecimal };
    const converted: unknown = fromText ? Value.Convert(schema, value) : value;
    if (check.Check(converted)) return { value: converted };
    return { error: check.Errors(converted) as FastifySchemaValidationError[] };
  };
};

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
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(checkedSerializer);
}
