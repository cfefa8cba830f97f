/**
 * What the signed-in user's role lets the app offer (the server decides: src/app/policies.ts). A
 * control the role does not allow is not shown, rather than shown and refused.
 */
import type { Actor, CurrentUser, Role } from './api/types.ts';
import { atLeast } from './session.tsx';

/** Creating, renaming and deleting projects. */
export function mayManageProjects(role: Role): boolean {
  return atLeast(role, 'admin');
}

/** Changing a project's workflow. */
export function mayChangeWorkflows(role: Role): boolean {
  return atLeast(role, 'admin');
}

/** Creating, editing, moving and deleting tasks; writing comments. */
export function mayEditTasks(role: Role): boolean {
  return atLeast(role, 'member');
}

/** Only its author edits a comment. */
export function mayEditComment(user: CurrentUser, author: Actor): boolean {
  return author.kind === 'user' && author.id === user.id;
}

/** Its author deletes a comment, and so does an admin. */
export function mayDeleteComment(user: CurrentUser, author: Actor): boolean {
  return mayEditComment(user, author) || atLeast(user.role, 'admin');
}

/** Users and invitations. */
export function mayManageUsers(role: Role): boolean {
  return atLeast(role, 'admin');
}

/** The tenant's account settings (requiring a second factor). */
export function mayChangeSettings(role: Role): boolean {
  return role === 'owner';
}
