/** /api/projects. */
import { get, query, request } from './http.ts';
import type { Page, Project } from './types.ts';

export function listProjects(cursor?: string | null): Promise<Page<Project>> {
  return get<Page<Project>>(`/api/projects${query({ limit: 100, cursor })}`);
}

/** Every project, page after page (for pickers and names). */
export async function allProjects(): Promise<Project[]> {
  const projects: Project[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Project> = await listProjects(cursor);
    projects.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return projects;
}

export function getProject(id: string): Promise<Project> {
  return get<Project>(`/api/projects/${encodeURIComponent(id)}`);
}

export async function createProject(input: { key: string; name: string; description?: string }): Promise<Project> {
  return (await request<Project>('POST', '/api/projects', { body: input })).data;
}

export async function updateProject(id: string, changes: { name?: string; description?: string }): Promise<Project> {
  return (await request<Project>('PATCH', `/api/projects/${encodeURIComponent(id)}`, { body: changes })).data;
}

export async function deleteProject(id: string): Promise<void> {
  await request('DELETE', `/api/projects/${encodeURIComponent(id)}`);
}
