/**
 * /api/people: the tenant's active users as everybody who reads work may see them (id and display
 * name, no address or role), to pick an assignee and to show who did what. Managing users stays
 * with /api/users.
 */
import { Type } from 'typebox';
import type { App } from '../../app.ts';
import { PROBLEM_RESPONSES } from '../../schema.ts';
import type { Db } from '../../tenant-db.ts';
import { Person, type PersonView } from '../schema.ts';

/** Active users by display name, at most 1000. */
export async function listPeople(db: Db): Promise<PersonView[]> {
  const res = await db.query<{ id: string; display_name: string }>("SELECT id, display_name FROM app.users WHERE status = 'active' ORDER BY lower(display_name), id LIMIT 1000");
  return res.rows.map((r) => ({ id: r.id, displayName: r.display_name }));
}

const listPeopleRoute = {
  summary: 'The people tasks can be assigned to',
  response: { 200: Type.Object({ items: Type.Array(Person) }, { additionalProperties: false }), ...PROBLEM_RESPONSES },
};

export function peopleRoutes(app: App): void {
  app.get('/people', { config: { permission: 'work.read' }, schema: listPeopleRoute }, async (request) => ({ items: await request.tenantDb.read(listPeople) }));
}
