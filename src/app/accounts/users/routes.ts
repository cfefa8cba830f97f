/** /api/users, /api/invitations and /api/settings/accounts: administration of the tenant's users. */
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../../errors.ts';
import type { App } from '../../app.ts';
import { IdParams, PROBLEM_RESPONSES } from '../../schema.ts';
import { callerOf } from '../caller.ts';
import { EmailInput, RoleSchema } from '../schema.ts';
import type { AccountServices } from '../services.ts';
import { requireSecondFactorSetting } from './store.ts';
import { changeRole, deactivateUser, endSessionsOf, inviteUser, listInvitations, listUsers, reactivateUser, revokeInvitation, updateAccountSettings } from './commands.ts';

const User = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    displayName: Type.String(),
    role: RoleSchema,
    status: Type.Union([Type.Literal('active'), Type.Literal('deactivated')]),
    secondFactor: Type.Boolean(),
    createdAt: Type.String(),
  },
  { additionalProperties: false },
);
const Invitation = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    role: RoleSchema,
    status: Type.Union([Type.Literal('pending'), Type.Literal('accepted'), Type.Literal('revoked'), Type.Literal('expired')]),
    createdAt: Type.String(),
    expiresAt: Type.String(),
  },
  { additionalProperties: false },
);
const AccountSettings = Type.Object({ requireSecondFactor: Type.Boolean() }, { additionalProperties: false });

export function userRoutes(app: App, services: AccountServices): void {
  const manage = { permission: 'users.manage' as const };
  const admin = (request: FastifyRequest) => {
    const p = request.principal;
    if (p?.kind !== 'user') throw new AppError('unauthenticated');
    return { tenantDb: request.tenantDb, services, caller: callerOf(request), actor: p.user };
  };

  app.get('/users', { config: manage, schema: { summary: 'List the users', response: { 200: Type.Object({ items: Type.Array(User) }), ...PROBLEM_RESPONSES } } }, async (request) => ({
    items: await request.tenantDb.read(listUsers),
  }));

  app.patch('/users/:id', { config: manage, schema: { summary: "Change a user's role", params: IdParams, body: Type.Object({ role: RoleSchema }, { additionalProperties: false }), response: { 200: User, ...PROBLEM_RESPONSES } } }, async (request) =>
    changeRole({ ...admin(request), userId: request.params.id, role: request.body.role }),
  );

  app.post('/users/:id/deactivate', { config: manage, schema: { summary: 'Deactivate a user', params: IdParams, response: { 200: User, ...PROBLEM_RESPONSES } } }, async (request) =>
    deactivateUser({ ...admin(request), userId: request.params.id }),
  );

  app.post('/users/:id/reactivate', { config: manage, schema: { summary: 'Reactivate a user', params: IdParams, response: { 200: User, ...PROBLEM_RESPONSES } } }, async (request) =>
    reactivateUser({ ...admin(request), userId: request.params.id }),
  );

  app.post('/users/:id/sessions/end', { config: manage, schema: { summary: 'Sign a user out everywhere', params: IdParams, response: { 200: Type.Object({ ended: Type.Integer() }), ...PROBLEM_RESPONSES } } }, async (request) => ({
    ended: await endSessionsOf({ ...admin(request), userId: request.params.id }),
  }));

  app.get('/invitations', { config: manage, schema: { summary: 'List invitations', response: { 200: Type.Object({ items: Type.Array(Invitation) }), ...PROBLEM_RESPONSES } } }, async (request) => ({
    items: await request.tenantDb.read(listInvitations),
  }));

  app.post(
    '/invitations',
    { config: manage, schema: { summary: 'Invite someone', body: Type.Object({ email: EmailInput, role: RoleSchema }, { additionalProperties: false }), response: { 201: Invitation, ...PROBLEM_RESPONSES } } },
    async (request, reply) => reply.code(201).send(await inviteUser({ ...admin(request), email: request.body.email, role: request.body.role })),
  );

  app.delete('/invitations/:id', { config: manage, schema: { summary: 'Revoke an invitation', params: IdParams, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } } }, async (request, reply) => {
    await revokeInvitation({ ...admin(request), invitationId: request.params.id });
    return reply.code(204).send(null);
  });

  app.get('/settings/accounts', { config: manage, schema: { summary: 'Read the account settings', response: { 200: AccountSettings, ...PROBLEM_RESPONSES } } }, async (request) => ({
    requireSecondFactor: await request.tenantDb.read(requireSecondFactorSetting),
  }));

  app.put('/settings/accounts', { config: { permission: 'settings.manage' }, schema: { summary: 'Change the account settings', body: AccountSettings, response: { 200: AccountSettings, ...PROBLEM_RESPONSES } } }, async (request) =>
    updateAccountSettings({ ...admin(request), requireSecondFactor: request.body.requireSecondFactor }),
  );
}
