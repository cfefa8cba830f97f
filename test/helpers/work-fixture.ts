/**
 * The set-up of the task suites: a server with tenant acme (an owner, an admin, two members, a
 * viewer, a deactivated member, a project OPS) and tenant globex (an owner), and calls to its tasks.
 */
import assert from 'node:assert/strict';
import { firstOwner, invitedUser } from './accounts.ts';
import type { Browser } from './browser.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './http-server.ts';
import { createProject, statusesOf, type Page, type Project, type Status, type Task } from './work.ts';

export interface HistoryEntry {
  kind: string;
  field: string | null;
  before: unknown;
  after: unknown;
  actor: { kind: string; id: string | null; displayName: string };
  at: string;
}

export interface Comment {
  id: string;
  taskId: string;
  body: string;
  author: { kind: string; id: string | null; displayName: string };
  edited: boolean;
}

export interface WorkFixture {
  h: HttpTest;
  acme: TestTenant;
  globex: TestTenant;
  owner: Browser;
  admin: Browser;
  member: Browser;
  other: Browser;
  viewer: Browser;
  /** User ids by the name before the @ of their address (`member`, `leaver`), and `globexOwner`. */
  ids: Record<string, string>;
  /** acme's project OPS, and its statuses by name. */
  project: Project;
  statuses: Record<string, Status>;
  tasksUrl(project?: Project): string;
  /** Creates a task in OPS, with the API token unless a browser is given. */
  newTask(body: Record<string, unknown>, as?: Browser | null): Promise<Task>;
  read(id: string): Promise<Task>;
  historyOf(id: string): Promise<HistoryEntry[]>;
  cleanup(): Promise<void>;
}

export async function startWorkFixture(): Promise<WorkFixture> {
  const h = await startHttpTest({ 'server.trustProxy': true });
  try {
    const acme = await makeTenant(h.tp, 'acme');
    const globex = await makeTenant(h.tp, 'globex');
    const owner = await firstOwner(h.app, h.tp, acme, 'owner@acme.example');
    const admin = await invitedUser(h.app, h.tp, owner, 'admin@acme.example', 'admin');
    const member = await invitedUser(h.app, h.tp, owner, 'member@acme.example', 'member');
    const other = await invitedUser(h.app, h.tp, owner, 'other@acme.example', 'member');
    const viewer = await invitedUser(h.app, h.tp, owner, 'viewer@acme.example', 'viewer');
    await invitedUser(h.app, h.tp, owner, 'leaver@acme.example', 'member');
    const ids: Record<string, string> = {};
    const users = (await owner.request('GET', '/api/users')).json<{ items: { id: string; email: string }[] }>().items;
    for (const u of users) ids[u.email.split('@')[0] ?? ''] = u.id;
    assert.equal((await owner.request('POST', `/api/users/${ids.leaver ?? ''}/deactivate`)).statusCode, 200);
    const globexOwner = await firstOwner(h.app, h.tp, globex, 'owner@globex.example');
    ids.globexOwner = (await globexOwner.request('GET', '/api/users')).json<{ items: { id: string }[] }>().items[0]?.id ?? '';
    const project = await createProject(admin, 'OPS', 'Operations');
    const statuses = await statusesOf(viewer, project.id);
    const tasksUrl = (p: Project = project) => `/api/projects/${p.id}/tasks`;
    return {
      h,
      acme,
      globex,
      owner,
      admin,
      member,
      other,
      viewer,
      ids,
      project,
      statuses,
      tasksUrl,
      async newTask(body, as = null) {
        const res = as ? await as.request('POST', tasksUrl(), body) : await call(h.app, acme, tasksUrl(), { method: 'POST', body });
        assert.equal(res.statusCode, 201, res.body);
        return res.json<Task>();
      },
      async read(id) {
        return (await call(h.app, acme, `/api/tasks/${id}`)).json<Task>();
      },
      async historyOf(id) {
        const res = await call(h.app, acme, `/api/tasks/${id}/history?limit=100`);
        assert.equal(res.statusCode, 200, res.body);
        return res.json<Page<HistoryEntry>>().items;
      },
      cleanup: () => h.cleanup(),
    };
  } catch (err) {
    await h.cleanup();
    throw err;
  }
}
