/** /api/account: the signed-in user's own profile, password, e-mail, second factor and sessions. */
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../../errors.ts';
import type { App } from '../../app.ts';
import { IdParams, PROBLEM_RESPONSES } from '../../schema.ts';
import { callerOf } from '../caller.ts';
import type { Principal } from '../principal.ts';
import { CurrentUser, DisplayName, EmailInput, PasswordInput, TotpCode } from '../schema.ts';
import type { AccountServices } from '../services.ts';
import { listSessions, setSessionCookie } from '../sessions.ts';
import {
  beginSecondFactor,
  changeEmail,
  changePassword,
  confirmSecondFactor,
  endOtherSessions,
  endOwnSession,
  regenerateRecoveryCodes,
  removeSecondFactor,
  updateProfile,
} from './commands.ts';

const Session = Type.Object(
  {
    id: Type.String(),
    current: Type.Boolean(),
    createdAt: Type.String(),
    lastSeenAt: Type.String(),
    expiresAt: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
const RecoveryCodes = Type.Object({ recoveryCodes: Type.Array(Type.String()) }, { additionalProperties: false });
const NoContent = { 204: Type.Null(), ...PROBLEM_RESPONSES };

function self(principal: Principal | null): Extract<Principal, { kind: 'user' }> {
  if (principal?.kind !== 'user') throw new AppError('unauthenticated');
  return principal;
}

export function accountRoutes(app: App, services: AccountServices): void {
  const own = { permission: 'account.self' as const };
  const enrolling = { ...own, allowDuringEnrolment: true };
  const props = (request: FastifyRequest) => {
    const p = self(request.principal);
    return { tenantDb: request.tenantDb, services, caller: callerOf(request), user: p.user, session: p.session };
  };

  app.get('/account', { config: enrolling, schema: { summary: 'Who am I', response: { 200: CurrentUser, ...PROBLEM_RESPONSES } } }, async (request) => Promise.resolve(self(request.principal).user));

  app.patch('/account', { config: own, schema: { summary: 'Change your display name', body: Type.Object({ displayName: DisplayName }, { additionalProperties: false }), response: NoContent } }, async (request, reply) => {
    await updateProfile({ ...props(request), displayName: request.body.displayName });
    return reply.code(204).send(null);
  });

  app.put('/account/password', { config: enrolling, schema: { summary: 'Change your password', body: Type.Object({ newPassword: PasswordInput }, { additionalProperties: false }), response: NoContent } }, async (request, reply) => {
    const session = await changePassword({ ...props(request), newPassword: request.body.newPassword });
    setSessionCookie(reply, session.token, session.expiresAt);
    return reply.code(204).send(null);
  });

  app.put('/account/email', { config: own, schema: { summary: 'Change your sign-in address', body: Type.Object({ email: EmailInput }, { additionalProperties: false }), response: NoContent } }, async (request, reply) => {
    await changeEmail({ ...props(request), email: request.body.email });
    return reply.code(204).send(null);
  });

  app.post(
    '/account/second-factor/setup',
    { config: enrolling, schema: { summary: 'Start setting up an authenticator app', response: { 200: Type.Object({ uri: Type.String(), secret: Type.String() }, { additionalProperties: false }), ...PROBLEM_RESPONSES } } },
    async (request, reply) => reply.header('cache-control', 'no-store').send(await beginSecondFactor(props(request))),
  );

  app.post(
    '/account/second-factor/confirm',
    { config: enrolling, schema: { summary: 'Confirm the authenticator app with a code', body: Type.Object({ code: TotpCode }, { additionalProperties: false }), response: { 200: RecoveryCodes, ...PROBLEM_RESPONSES } } },
    async (request, reply) => {
      const { recoveryCodes, session } = await confirmSecondFactor({ ...props(request), code: request.body.code });
      setSessionCookie(reply, session.token, session.expiresAt);
      return reply.header('cache-control', 'no-store').send({ recoveryCodes });
    },
  );

  app.delete('/account/second-factor', { config: own, schema: { summary: 'Remove your second factor', response: NoContent } }, async (request, reply) => {
    await removeSecondFactor(props(request));
    return reply.code(204).send(null);
  });

  app.post('/account/recovery-codes', { config: own, schema: { summary: 'New recovery codes', response: { 200: RecoveryCodes, ...PROBLEM_RESPONSES } } }, async (request, reply) => {
    const recoveryCodes = await regenerateRecoveryCodes(props(request));
    return reply.header('cache-control', 'no-store').send({ recoveryCodes });
  });

  app.get('/account/sessions', { config: enrolling, schema: { summary: 'Your live sessions', response: { 200: Type.Object({ items: Type.Array(Session) }), ...PROBLEM_RESPONSES } } }, async (request) => {
    const p = self(request.principal);
    const items = await request.tenantDb.read((db) => listSessions(db, { userId: p.user.id, currentSessionId: p.session.id, timeouts: services.settings }));
    return { items };
  });

  app.delete('/account/sessions/:id', { config: enrolling, schema: { summary: 'End one of your sessions', params: IdParams, response: NoContent } }, async (request, reply) => {
    await endOwnSession({ ...props(request), sessionId: request.params.id });
    return reply.code(204).send(null);
  });

  app.post('/account/sessions/end-others', { config: enrolling, schema: { summary: 'End all your other sessions', response: { 200: Type.Object({ ended: Type.Integer() }), ...PROBLEM_RESPONSES } } }, async (request) => {
    return { ended: await endOtherSessions(props(request)) };
  });
}
