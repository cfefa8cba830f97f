/**
 * Who did something to work, as stored and shown: a user (by id), an API token (all of a tenant's
 * tokens are one kind of caller, with no id), or TaskFlow itself (migrations, the demo data).
 */
import { Type, type Static } from 'typebox';
import { AppError } from '../../errors.ts';
import type { Principal } from '../accounts/principal.ts';
import type { WorkActor } from '../policies.ts';
import { Uuid } from '../schema.ts';

export const ActorKind = Type.Union([Type.Literal('user'), Type.Literal('api-token'), Type.Literal('system')]);
export type ActorKindValue = Static<typeof ActorKind>;

/** An actor in responses: reporters, comment authors, the authors of history entries. */
export const Actor = Type.Object(
  {
    kind: ActorKind,
    /** The user's id; null for API tokens and TaskFlow itself. */
    id: Type.Union([Uuid, Type.Null()]),
    /** The user's display name now; `API token` or `TaskFlow` otherwise. */
    displayName: Type.String(),
  },
  { additionalProperties: false },
);
export type ActorView = Static<typeof Actor>;

/** The work actor of a request; routes that reach this have checked a permission already. */
export function workActorOf(principal: Principal | null): WorkActor {
  if (!principal) throw new AppError('unauthenticated');
  if (principal.kind === 'token') return { kind: 'api-token' };
  return { kind: 'user', id: principal.user.id, role: principal.user.role };
}

/** The two columns (`*_kind`, `*_id`) an actor is stored as. */
export function actorColumns(actor: WorkActor): [ActorKindValue, string | null] {
  return actor.kind === 'user' ? ['user', actor.id] : [actor.kind, null];
}

/** The response shape of stored actor columns and the user's display name (joined). */
export function actorView(kind: ActorKindValue, id: string | null, displayName: string | null): ActorView {
  if (kind === 'user') return { kind, id, displayName: displayName ?? 'Unknown user' };
  return { kind, id: null, displayName: kind === 'api-token' ? 'API token' : 'TaskFlow' };
}
