/** The shapes the API answers with (docs/api.md); the server checks its answers against the same contract. */

export type Role = 'viewer' | 'member' | 'admin' | 'owner';
export const ROLES: readonly Role[] = ['viewer', 'member', 'admin', 'owner'];

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Project {
  id: string;
  key: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

export type Priority = 'low' | 'medium' | 'high' | 'urgent';
export const PRIORITIES: readonly Priority[] = ['low', 'medium', 'high', 'urgent'];

/** Where a status stands on the board, whatever its name. */
export type StatusCategory = 'todo' | 'in_progress' | 'done';
export const CATEGORIES: readonly StatusCategory[] = ['todo', 'in_progress', 'done'];

/** A task's status as shown with the task: one of its project's workflow (workflow.ts). */
export interface StatusRef {
  id: string;
  name: string;
  category: StatusCategory;
}

/** A user as everybody who reads work sees them. */
export interface Person {
  id: string;
  displayName: string;
}

/** Who did something: a user, an API token or TaskFlow itself. */
export interface Actor {
  kind: 'user' | 'api-token' | 'system';
  id: string | null;
  displayName: string;
}

export interface Task {
  id: string;
  key: string;
  projectId: string;
  number: number;
  title: string;
  description: string;
  status: StatusRef;
  priority: Priority;
  dueDate: string | null;
  labels: string[];
  assignee: Person | null;
  reporter: Actor;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Comment {
  id: string;
  taskId: string;
  /** Markdown. */
  body: string;
  author: Actor;
  createdAt: string;
  updatedAt: string;
  edited: boolean;
}

/** One entry of a task's history. */
export interface TaskEvent {
  id: string;
  kind: 'created' | 'changed' | 'commented' | 'comment-edited' | 'comment-deleted';
  /** For `changed`: title, description, status, priority, dueDate, assignee or labels. */
  field: string | null;
  before: unknown;
  after: unknown;
  actor: Actor;
  at: string;
}

export interface CurrentUser {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  secondFactor: boolean;
}

export interface SessionState {
  signedIn: boolean;
  stage: 'none' | 'mfa' | 'active';
  mustEnrolSecondFactor: boolean;
  user: CurrentUser | null;
  expiresAt: string | null;
}

export interface AccountSession {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
}

export interface User {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  status: 'active' | 'deactivated';
  secondFactor: boolean;
  createdAt: string;
}

export interface Invitation {
  id: string;
  email: string;
  role: Role;
  status: 'pending' | 'accepted' | 'revoked' | 'expired';
  createdAt: string;
  expiresAt: string;
}

export interface AccountSettings {
  requireSecondFactor: boolean;
}
