/** The Quickstart's demo tenant, created on first start with a project and a few tasks in it. */
import pg from 'pg';
import { clientConfig } from '../postgres/connection.ts';
import { tenantDbPassword } from './credentials.ts';
import { createTenant, type PlatformCore } from './provision.ts';
import { findTenantBySlug, type Tenant } from './registry.ts';

export const DEMO_SLUG = 'demo';
/** Where the demo owner's setup link goes (the local mailbox, unless SMTP is configured). */
export const DEMO_OWNER_EMAIL = 'owner@demo.localhost';

const DEMO_TASKS: { title: string; status: string; priority: string }[] = [
  { title: 'Invite the team', status: 'done', priority: 'high' },
  { title: 'Import last quarter’s open items', status: 'in_progress', priority: 'medium' },
  { title: 'Agree on the release checklist', status: 'todo', priority: 'high' },
  { title: 'Schedule the launch review', status: 'todo', priority: 'medium' },
  { title: 'Write the customer announcement', status: 'todo', priority: 'low' },
];

/** Seeds the demo data as the tenant's own login role, so it passes the same privileges as the app. */
async function seed(platform: PlatformCore, tenant: Tenant): Promise<void> {
  const client = new pg.Client(
    clientConfig(platform.target, tenant.databaseName, { user: tenant.loginRole, password: tenantDbPassword(platform.masterKey, tenant.id, tenant.credentialVersion) }),
  );
  await client.connect();
  try {
    await client.query('BEGIN');
    const project = await client.query<{ id: string }>(
      "INSERT INTO app.projects (key, name, description, next_task_number) VALUES ('DEMO', 'Launch plan', 'Everything for the spring launch.', $1) RETURNING id",
      [DEMO_TASKS.length + 1],
    );
    const projectId = project.rows[0]?.id;
    for (const [i, task] of DEMO_TASKS.entries()) {
      await client.query('INSERT INTO app.tasks (project_id, number, title, status, priority) VALUES ($1, $2, $3, $4, $5)', [
        projectId,
        i + 1,
        task.title,
        task.status,
        task.priority,
      ]);
    }
    await client.query('COMMIT');
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
