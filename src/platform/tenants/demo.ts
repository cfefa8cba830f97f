/**
 * The Quickstart's demo tenant, created on first start with a populated board: a project with a
 * five-column workflow (one sign-off limited to admins and owners), fourteen tasks across it with
 * priorities, labels, due dates and Markdown descriptions, comments, and the history of how they
 * got there. The data is made by the product's own commands, so it is exactly what the API would
 * have made: the tasks and their moves as TaskFlow itself (actor `system`), the comments by four
 * staff accounts (an admin and three members), who also have most of the tasks. The owner comes
 * later, through the setup link.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createComment } from '../../app/work/comments/commands.ts';
import { createProject } from '../../app/work/projects/commands.ts';
import { createTask, moveTask } from '../../app/work/tasks/commands.ts';
import { getWorkflow, replaceWorkflow } from '../../app/work/workflows/commands.ts';
import type { WorkActor } from '../../app/policies.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { clientConfig } from '../postgres/connection.ts';
import { tenantDbPassword } from './credentials.ts';
import { createTenant, type PlatformCore } from './provision.ts';
import { findTenantBySlug, type Tenant } from './registry.ts';

export const DEMO_SLUG = 'demo';
/** Where the demo owner's setup link goes (the local mailbox, unless SMTP is configured). */
export const DEMO_OWNER_EMAIL = 'owner@demo.localhost';

type Column = 'Backlog' | 'To do' | 'In progress' | 'In review' | 'Done';

/**
 * The demo's staff: accounts like those an accepted invitation makes (normalised address, argon2id
 * hash), each with a random password that is neither stored nor shown. To sign in as one, ask for
 * a reset link on the sign-in page; the mail lands in the local mailbox (`taskflow mail show latest`).
 */
export const DEMO_STAFF = {
  maya: { displayName: 'Maya Okafor', role: 'admin' },
  jonas: { displayName: 'Jonas Weber', role: 'member' },
  priya: { displayName: 'Priya Nair', role: 'member' },
  sam: { displayName: 'Sam Lindqvist', role: 'member' },
} as const;
type Staff = keyof typeof DEMO_STAFF;

interface DemoTask {
  title: string;
  /** Where it ends up; it starts in Backlog or To do and moves along the workflow, leaving history. */
  status: Column;
  priority: 'low' | 'medium' | 'high' | 'urgent';
  labels: string[];
  /** Days from today, or none. */
  dueInDays?: number;
  description?: string;
  assignee?: Staff;
  /** Who wrote each comment, and what. */
  comments?: [Staff, string][];
}

const DEMO_TASKS: DemoTask[] = [
  {
    title: 'Invite the team',
    assignee: 'maya',
    status: 'Done',
    priority: 'high',
    labels: ['onboarding'],
    description: 'Everyone who works on the launch gets an account.\n\n- **Admins** manage projects and workflows\n- **Members** edit tasks\n- **Viewers** read along',
    comments: [['maya', 'Invitations are under *Users*: each link works once, for seven days.']],
  },
  { title: 'Pick the launch date', assignee: 'maya', status: 'Done', priority: 'urgent', labels: ['planning'], description: 'Agreed with sales and support: see the *Launch review* task.' },
  { title: 'Import last quarter’s open items', assignee: 'jonas', status: 'In review', priority: 'medium', labels: ['migration'], dueInDays: 3, comments: [['jonas', 'Imported 212 items; 9 need a second look before this is done.']] },
  {
    title: 'Agree on the release checklist',
    assignee: 'priya',
    status: 'In progress',
    priority: 'high',
    labels: ['planning', 'release'],
    dueInDays: 5,
    description: '## Draft\n\n1. Feature freeze\n2. Release notes reviewed\n3. Rollback plan tested\n4. Support briefed\n\nAdd what is missing in a comment.',
    comments: [
      ['sam', 'Should the rollback drill be on the list too?'],
      ['priya', 'Yes: added as step 3.'],
    ],
  },
  { title: 'Write the customer announcement', assignee: 'sam', status: 'In progress', priority: 'medium', labels: ['marketing'], dueInDays: 9, description: 'Tone: plain, short, one screenshot. Link to the [changelog](https://example.com/changelog).' },
  { title: 'Update the pricing page', assignee: 'sam', status: 'In review', priority: 'high', labels: ['marketing', 'website'], dueInDays: 4 },
  { title: 'Schedule the launch review', assignee: 'maya', status: 'To do', priority: 'medium', labels: ['planning'], dueInDays: 7 },
  { title: 'Load-test the sign-up flow', assignee: 'jonas', status: 'To do', priority: 'urgent', labels: ['engineering', 'release'], dueInDays: 2, description: 'Target: **500 sign-ups a minute** for ten minutes without errors.', comments: [['maya', 'Staging is free on Thursday.']] },
  { title: 'Translate the help centre', status: 'To do', priority: 'low', labels: ['support'], dueInDays: 21 },
  { title: 'Brief the support team', assignee: 'priya', status: 'To do', priority: 'medium', labels: ['support'], dueInDays: 10 },
  { title: 'Record the demo video', status: 'Backlog', priority: 'low', labels: ['marketing'] },
  { title: 'Plan the launch-day on-call rota', assignee: 'jonas', status: 'Backlog', priority: 'medium', labels: ['engineering'], dueInDays: 12 },
  { title: 'Collect beta feedback', status: 'Backlog', priority: 'low', labels: ['research'] },
  { title: 'Retire the old status page', status: 'Backlog', priority: 'low', labels: ['website', 'engineering'] },
];

/** The way from where tasks are created to each column, along the demo workflow. */
const PATHS: Record<Column, Column[]> = {
  Backlog: ['Backlog'],
  'To do': ['To do'],
  'In progress': ['To do', 'In progress'],
  'In review': ['To do', 'In progress', 'In review'],
  Done: ['To do', 'In progress', 'In review', 'Done'],
};

function inDays(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

/** Creates the staff accounts; answers their user ids. */
async function createStaff(db: pg.ClientBase, platform: PlatformCore): Promise<Record<Staff, WorkActor & { kind: 'user' }>> {
  const actors: Partial<Record<Staff, WorkActor & { kind: 'user' }>> = {};
  for (const [key, person] of Object.entries(DEMO_STAFF) as [Staff, (typeof DEMO_STAFF)[Staff]][]) {
    const hash = await hashPassword(randomBytes(32).toString('base64url'), platform.config.accounts.argon2);
    const res = await db.query<{ id: string }>('INSERT INTO app.users (email, display_name, role, password_hash) VALUES ($1, $2, $3, $4) RETURNING id', [
      `${key}@${DEMO_SLUG}.localhost`,
      person.displayName,
      person.role,
      hash,
    ]);
    const id = res.rows[0]?.id;
    if (id === undefined) throw new Error('user insert returned nothing');
    actors[key] = { kind: 'user', id, role: person.role };
  }
  return actors as Record<Staff, WorkActor & { kind: 'user' }>;
}

/** Seeds the demo data as the tenant's own login role, so it passes the same privileges as the app. */
async function seed(platform: PlatformCore, tenant: Tenant): Promise<void> {
  const client = new pg.Client(
    clientConfig(platform.target, tenant.databaseName, { user: tenant.loginRole, password: tenantDbPassword(platform.masterKey, tenant.id, tenant.credentialVersion) }),
  );
  const actor: WorkActor = { kind: 'system' };
  await client.connect();
  try {
    await client.query('BEGIN');
    const db = client;
    const staff = await createStaff(db, platform);
    const project = await createProject({ db, actor, input: { key: 'DEMO', name: 'Launch plan', description: 'Everything for the spring launch.' } });
    const initial = await getWorkflow({ db, projectId: project.id });
    const keep = (name: string) => initial.statuses.find((s) => s.name === name)?.id;
    const workflow = await replaceWorkflow({
      db,
      actor,
      projectId: project.id,
      versions: null,
      change: {
        statuses: [
          { name: 'Backlog', category: 'todo' },
          { id: keep('To do'), name: 'To do', category: 'todo' },
          { id: keep('In progress'), name: 'In progress', category: 'in_progress' },
          { name: 'In review', category: 'in_progress' },
          { id: keep('Done'), name: 'Done', category: 'done' },
        ],
        transitions: [
          { from: 'Backlog', to: 'To do' },
          { from: 'To do', to: 'Backlog' },
          { from: 'To do', to: 'In progress' },
          { from: 'In progress', to: 'To do' },
          { from: 'In progress', to: 'In review' },
          { from: 'In review', to: 'In progress' },
          // The sign-off: only admins and owners close a task.
          { from: 'In review', to: 'Done', roles: ['admin', 'owner'] },
          { from: 'Done', to: 'In progress' },
        ],
      },
    });
    const statusId = (name: Column) => {
      const id = workflow.statuses.find((s) => s.name === name)?.id;
      if (id === undefined) throw new Error(`demo workflow has no ${name}`);
      return id;
    };
    for (const demo of DEMO_TASKS) {
      const [first, ...moves] = PATHS[demo.status];
      const task = await createTask({
        db,
        actor,
        projectId: project.id,
        input: {
          title: demo.title,
          description: demo.description ?? '',
          statusId: statusId(first ?? 'Backlog'),
          priority: demo.priority,
          labels: demo.labels,
          dueDate: demo.dueInDays === undefined ? null : inDays(demo.dueInDays),
          assigneeId: demo.assignee === undefined ? null : staff[demo.assignee].id,
        },
      });
      for (const to of moves) await moveTask({ db, actor, id: task.id, toStatusId: statusId(to), versions: null });
      for (const [by, body] of demo.comments ?? []) await createComment({ db, actor: staff[by], taskId: task.id, body });
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

/** Creates the demo tenant if it does not exist; returns it and, the first time only, its API token. */
export async function ensureDemoTenant(platform: PlatformCore): Promise<{ tenant: Tenant; apiToken: string | null }> {
  const existing = await findTenantBySlug(platform.control, DEMO_SLUG);
  if (existing) return { tenant: existing, apiToken: null };
  const { tenant, apiToken } = await createTenant({ platform, slug: DEMO_SLUG, name: 'Demo Company', actor: 'system:demo' });
  await seed(platform, tenant);
  return { tenant, apiToken };
}
