/**
 * /problems/:code: what a problem `type` URI points at, so a client (or a person) following it
 * learns what the code means. Answered on any host.
 */
import { Type } from 'typebox';
import { AppError, PROBLEMS, problemType, type ProblemCode } from '../../errors.ts';
import type { App } from '../app.ts';
import { PROBLEM_RESPONSES } from '../schema.ts';

const ProblemDoc = Type.Object(
  { type: Type.String(), code: Type.String(), status: Type.Integer(), title: Type.String() },
  { additionalProperties: false },
);

function isProblemCode(code: string): code is ProblemCode {
  return Object.hasOwn(PROBLEMS, code);
}

export function installProblemDocs(app: App): void {
  app.get(
    '/problems/:code',
    {
      config: { tenancy: 'none' },
      schema: {
        summary: 'What a problem code means',
        params: Type.Object({ code: Type.String({ pattern: '^[a-z][a-z-]{0,63}$' }) }, { additionalProperties: false }),
        response: { 200: ProblemDoc, ...PROBLEM_RESPONSES },
      },
    },
    async (request, reply) => {
      const { code } = request.params;
      if (!isProblemCode(code)) throw new AppError('not-found', 'no such problem code');
      void reply.header('cache-control', 'public, max-age=86400');
      return { type: problemType(code), code, status: PROBLEMS[code].status, title: PROBLEMS[code].title };
    },
  );
}
