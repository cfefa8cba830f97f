/**
 * Who may do what: one rule per line. A route names its permission in its config; the authenticate
 * plugin checks it before validation. Rules that depend on the target (only an owner changes an
 * owner; the last owner stays; a transition limited to some roles; a comment's author) are the
 * functions below the table, called by the commands that know the target.
 */
export const ROLES = ['viewer', 'member', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

/** Whether `role` is at least `minimum`. */
export function atLeast(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}

export const RULES = {
  /** Anyone, signed in or not: sign-in, password reset, accepting an invitation, the API reference. */
  public: { role: null, tokens: false },
  /** A signed-in user of any role: their own account and sessions. */
  'account.self': { role: 'viewer', tokens: false },
  /** Projects, workflows, tasks, comments, history, people: reading. */
  'work.read': { role: 'viewer', tokens: true },
  /** Tasks and comments: creating, editing, moving, deleting. */
  'work.write': { role: 'member', tokens: true },
  /** Projects: creating, renaming, deleting. */
  'projects.manage': { role: 'admin', tokens: false },
  /** A project's workflow: its statuses and transitions. */
  'workflows.manage': { role: 'admin', tokens: false },
  'users.manage': { role: 'admin', tokens: false },
  'settings.manage': { role: 'owner', tokens: false },
} as const satisfies Record<string, { role: Role | null; tokens: boolean }>;

export type Permission = keyof typeof RULES;

/** Whether a principal with this role (null for an API token) has the permission. */
export function allows(permission: Permission, who: { kind: 'user'; role: Role } | { kind: 'token' }): boolean {
  const rule = RULES[permission];
  if (rule.role === null) return true;
  if (who.kind === 'token') return rule.tokens;
  return atLeast(who.role, rule.role);
}

/**
 * Who changes work, as the work rules see them: a user with their role, an API token (which works
 * as a member), or TaskFlow itself (the demo data), which works as an owner.
 */
export type WorkActor = { kind: 'user'; id: string; role: Role } | { kind: 'api-token' } | { kind: 'system' };

/** The role an actor's work is judged by. */
export function workRoleOf(actor: WorkActor): Role {
  if (actor.kind === 'user') return actor.role;
  return actor.kind === 'api-token' ? 'member' : 'owner';
}

/** Whether the actor may move a task along a transition limited to `roles` (null: not limited). */
export function mayUseTransition(actor: WorkActor, roles: readonly Role[] | null): boolean {
  return roles === null || roles.includes(workRoleOf(actor));
}

/** Who wrote a comment: a user, an API token (all of a tenant's tokens count as one author) or TaskFlow. */
export type CommentAuthor = { kind: 'user'; id: string } | { kind: 'api-token' } | { kind: 'system' };

function isAuthor(actor: WorkActor, author: CommentAuthor): boolean {
  if (actor.kind === 'user') return author.kind === 'user' && author.id === actor.id;
  return actor.kind === author.kind;
}

/** Only a comment's author edits it: nobody puts words in someone else's mouth. */
export function mayEditComment(actor: WorkActor, author: CommentAuthor): boolean {
  return isAuthor(actor, author);
}

/** Its author deletes a comment, and so does an admin (moderation). */
export function mayDeleteComment(actor: WorkActor, author: CommentAuthor): boolean {
  return isAuthor(actor, author) || atLeast(workRoleOf(actor), 'admin');
}
