/** /api/people: the users tasks can be assigned to, as everybody who reads work sees them. */
import { get } from './http.ts';
import type { Person } from './types.ts';

export async function listPeople(): Promise<Person[]> {
  return (await get<{ items: Person[] }>('/api/people')).items;
}
