/** Schemas shared by every route: the problem body and identifiers. */
import { Type } from 'typebox';

const FieldError = Type.Object(
  { in: Type.String(), pointer: Type.String(), message: Type.String() },
  { additionalProperties: false },
);

/** RFC 9457 problem details; extension members are allowed, as the RFC says. */
export const Problem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer({ minimum: 400, maximum: 599 }),
  detail: Type.String(),
  instance: Type.String(),
  code: Type.String(),
  errors: Type.Optional(Type.Array(FieldError)),
});

/** The error statuses every route may answer with, all as problems. */
export const PROBLEM_RESPONSES = { '4xx': Problem, '5xx': Problem } as const;

export const Uuid = Type.String({ format: 'uuid' });

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const Timestamp = Type.String({ format: 'date-time' });
