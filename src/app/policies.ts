/**
 * Who may do what: one rule per line. A route names its permission in its config; the authenticate
 * plugin checks it before validation. Rules that depend on the target (only an owner changes an
 * owner; the last owner stays) live with the commands that know the target.
 */
export const ROLES = ['viewer', 'member', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

/** Whether `role` is at least `minimum`. */
export function atLeast(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}

export const RULES = {
  /** Anyone, signed in or not: sign-in, password reset, accepting an invitation. */
  public: { role: null, tokens: false },
  /** A signed-in user of any role: their own account and sessions. */
  'account.self': { role: 'viewer', tokens: false },
  'work.read': { role: 'viewer', tokens: true },
  'work.write': { role: 'member', tokens: true },
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
