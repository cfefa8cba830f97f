/** /api/auth: CSRF token, sign-in (with second factor), sign-out, re-authentication, password reset, invitations. */
import { Type, type Static } from 'typebox';
import { PROBLEM_RESPONSES } from '../../schema.ts';
import type { App } from '../../app.ts';
import { assertHttps, newCsrfToken, setCsrfCookie } from '../../plugins/csrf.ts';
import { callerOf } from '../caller.ts';
import type { Principal } from '../principal.ts';
import { DisplayName, EmailInput, PasswordInput, RecoveryCode, SessionState, Token, TotpCode } from '../schema.ts';
import type { AccountServices } from '../services.ts';
import { clearSessionCookie, setSessionCookie } from '../sessions.ts';
import { acceptInvitation, completePasswordReset, completeSecondFactor, reauthenticate, requestPasswordReset, signIn, signOut } from './commands.ts';
import { AppError } from '../../../errors.ts';

const SecondFactorBody = Type.Object(
  { code: Type.Optional(TotpCode), recoveryCode: Type.Optional(RecoveryCode) },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);

function stateOf(principal: Principal | null): Static<typeof SessionState> {
  if (principal?.kind !== 'user') return { signedIn: false, stage: 'none', mustEnrolSecondFactor: false, user: null, expiresAt: null };
  return {
    signedIn: principal.session.stage === 'active',
    stage: principal.session.stage,
    mustEnrolSecondFactor: principal.mustEnrolSecondFactor,
    user: principal.user,
    expiresAt: principal.session.expiresAt.toISOString(),
  };
}

function signedInUser(principal: Principal | null) {
  if (principal?.kind !== 'user') throw new AppError('unauthenticated');
  return principal;
}

export function authRoutes(app: App, services: AccountServices): void {
  const publicRoute = { permission: 'public' as const };

  app.get('/auth/csrf', { config: publicRoute, schema: { summary: 'A CSRF token for browser requests that change something', response: { 200: Type.Object({ csrfToken: Type.String() }), ...PROBLEM_RESPONSES } } }, async (request, reply) => {
    assertHttps(request);
    const tenant = request.tenant;
    if (!tenant) throw new Error('no tenant');
    const token = newCsrfToken(services.csrfKey, tenant.id);
    setCsrfCookie(reply, token);
    return reply.header('cache-control', 'no-store').send({ csrfToken: token });
  });

  app.get('/auth/session', { config: { ...publicRoute, allowPendingSecondFactor: true, allowDuringEnrolment: true }, schema: { summary: "The state of this browser's session", response: { 200: SessionState, ...PROBLEM_RESPONSES } } }, async (request, reply) => {
    return reply.header('cache-control', 'no-store').send(stateOf(request.principal));
  });

  app.post(
    '/auth/login',
    { config: publicRoute, schema: { summary: 'Sign in with e-mail address and password', body: Type.Object({ email: EmailInput, password: PasswordInput }, { additionalProperties: false }), response: { 200: SessionState, ...PROBLEM_RESPONSES } } },
    async (request, reply) => {
      const result = await signIn({ tenantDb: request.tenantDb, services, caller: callerOf(request), email: request.body.email, password: request.body.password });
      setSessionCookie(reply, result.session.token, result.session.expiresAt);
      return reply.header('cache-control', 'no-store').send({
        signedIn: result.stage === 'active',
        stage: result.stage,
        mustEnrolSecondFactor: result.mustEnrolSecondFactor,
        // Who it is, only once the second factor is in too.
        user: result.stage === 'active' ? result.user : null,
        expiresAt: result.session.expiresAt.toISOString(),
      });
    },
  );

  app.post(
    '/auth/login/second-factor',
    { config: { permission: 'account.self', allowPendingSecondFactor: true }, schema: { summary: 'Finish signing in with the second factor', body: SecondFactorBody, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } } },
    async (request, reply) => {
      const principal = signedInUser(request.principal);
      if (principal.session.stage !== 'mfa') throw new AppError('conflict', 'this session is already signed in');
      const session = await completeSecondFactor({ tenantDb: request.tenantDb, services, caller: callerOf(request), userId: principal.user.id, session: principal.session, ...request.body });
      setSessionCookie(reply, session.token, session.expiresAt);
      return reply.code(204).send(null);
    },
  );

  app.post('/auth/logout', { config: { permission: 'account.self', allowPendingSecondFactor: true, allowDuringEnrolment: true }, schema: { summary: 'Sign out', response: { 204: Type.Null(), ...PROBLEM_RESPONSES } } }, async (request, reply) => {
    const principal = signedInUser(request.principal);
    await signOut({ tenantDb: request.tenantDb, services, caller: callerOf(request), user: principal.user, sessionId: principal.session.id });
    clearSessionCookie(reply);
    return reply.code(204).send(null);
  });

  app.post(
    '/auth/reauthenticate',
    {
      config: { permission: 'account.self', allowDuringEnrolment: true },
      schema: {
        summary: 'Enter the password again before a sensitive change',
        body: Type.Object({ password: PasswordInput, code: Type.Optional(TotpCode), recoveryCode: Type.Optional(RecoveryCode) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...PROBLEM_RESPONSES },
      },
    },
    async (request, reply) => {
      const principal = signedInUser(request.principal);
      const session = await reauthenticate({ tenantDb: request.tenantDb, services, caller: callerOf(request), userId: principal.user.id, sessionId: principal.session.id, ...request.body });
      setSessionCookie(reply, session.token, session.expiresAt);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/password-reset',
    { config: publicRoute, schema: { summary: 'Ask for a password reset link', body: Type.Object({ email: EmailInput }, { additionalProperties: false }), response: { 202: Type.Object({ message: Type.String() }), ...PROBLEM_RESPONSES } } },
    async (request, reply) => {
      const caller = callerOf(request);
      const { tenantDb } = request;
      const email = request.body.email;
      // Done after the reply, so the answer and its timing are the same whether or not the address has an account.
      services.runLater('password-reset', () => requestPasswordReset({ tenantDb, services, caller, email }));
      return reply.code(202).send({ message: 'If an account uses that address, a link to reset its password is on its way.' });
    },
  );

  app.post(
    '/auth/password-reset/complete',
    { config: publicRoute, schema: { summary: 'Set a new password with a reset link', body: Type.Object({ token: Token, password: PasswordInput }, { additionalProperties: false }), response: { 204: Type.Null(), ...PROBLEM_RESPONSES } } },
    async (request, reply) => {
      await completePasswordReset({ tenantDb: request.tenantDb, services, caller: callerOf(request), token: request.body.token, password: request.body.password });
      clearSessionCookie(reply);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/invitations/accept',
    {
      config: publicRoute,
      schema: { summary: 'Accept an invitation or a setup link', body: Type.Object({ token: Token, displayName: DisplayName, password: PasswordInput }, { additionalProperties: false }), response: { 204: Type.Null(), ...PROBLEM_RESPONSES } },
    },
    async (request, reply) => {
      const { session } = await acceptInvitation({ tenantDb: request.tenantDb, services, caller: callerOf(request), ...request.body });
      setSessionCookie(reply, session.token, session.expiresAt);
      return reply.code(204).send(null);
    },
  );
}
