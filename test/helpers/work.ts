/** Shared pieces of the work suites: the shapes the API answers with, problem checks, and set-up through the API. */
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { withTenantDb } from '../../src/app/accounts/setup.ts';
import { createProject as createProjectCommand } from '../../src/app/work/projects/commands.ts';
import { PROBLEMS } from '../../src/errors.ts';
import type { Browser } from './browser.ts';
import type { TestTenant } from './http-server.ts';
import type { TestPlatform } from './platform.ts';

export interface Project {
  id: string;
  key: string;
  name: string;
  description: string;
}

export interface Status {
  id: string;
  name: string;
  category: 'todo' | 'in_progress' | 'done';
}

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
  status: Status;
  priority: string;
  dueDate: string | null;
  labels: string[];
  assignee: { id: string; displayName: string } | null;
  reporter: Actor;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Workflow {
  projectId: string;
  version: number;
  statuses: (Status & { position: number; taskCount: number })[];
  transitions: { fromStatusId: string; toStatusId: string; roles: string[] | null }[];
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  errors?: { in: string; pointer: string; message: string }[];
  currentVersion?: number;
  [extension: string]: unknown;
}

/** Asserts an RFC 9457 problem response with the given code, and returns its body. */
export function assertProblem(res: LightMyRequestResponse, code: keyof typeof PROBLEMS, instance?: string): ProblemBody {
  assert.equal(res.statusCode, PROBLEMS[code].status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json<ProblemBody>();
  assert.equal(body.code, code);
  assert.equal(body.type, `/problems/${code}`);
  assert.equal(body.title, PROBLEMS[code].title);
  assert.equal(body.status, PROBLEMS[code].status);
  assert.equal(typeof body.detail, 'string');
  if (instance !== undefined) assert.equal(body.instance, instance);
  assert.doesNotMatch(res.body, /at .+\.ts:\d+|\bSELECT\b|\bINSERT INTO\b|\bUPDATE \S+ SET\b|\bDELETE FROM\b|constraint/i, 'no stack or SQL in a problem');
  return body;
}

/** Creates a project as a signed-in admin or owner (projects are theirs to manage). */
export async function createProject(admin: Browser, key: string, name = key): Promise<Project> {
  const res = await admin.request('POST', '/api/projects', { key, name });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Project>();
}

/**
 * Creates a project straight through the command, as TaskFlow itself, for suites about something
 * else (pools, timeouts, tenancy) that have no admin signed in: API tokens cannot make projects.
 */
export async function seedProject(tp: TestPlatform, t: TestTenant, key: string, name = key): Promise<Project> {
  return withTenantDb(tp.platform, t.tenant, (db) => db.transaction((c) => createProjectCommand({ db: c, actor: { kind: 'system' }, input: { key, name } })));
}

/** A project's statuses by name. */
export async function statusesOf(reader: Browser, projectId: string): Promise<Record<string, Status>> {
  const res = await reader.request('GET', `/api/projects/${projectId}/workflow`);
  assert.equal(res.statusCode, 200, res.body);
  return Object.fromEntries(res.json<Workflow>().statuses.map((s) => [s.name, { id: s.id, name: s.name, category: s.category }]));
}
