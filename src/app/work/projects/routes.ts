/** /api/projects: the route chain is tenant → authentication and permission → schema → transaction → command. */
import type { App } from '../../app.ts';
import { workActorOf } from '../actor.ts';
import { acceptedVersions } from '../preconditions.ts';
import { createProject, deleteProject, getProject, listProjects, updateProject } from './commands.ts';
import { createProjectRoute, deleteProjectRoute, getProjectRoute, listProjectsRoute, updateProjectRoute } from './schema.ts';

const READ = { permission: 'work.read' } as const;
const MANAGE = { permission: 'projects.manage' } as const;

export function projectRoutes(app: App): void {
  app.post('/projects', { config: MANAGE, schema: createProjectRoute }, async (request, reply) => {
    const actor = workActorOf(request.principal);
    const project = await request.tenantDb.transaction((db) => createProject({ db, actor, input: request.body }));
    return reply.code(201).header('location', `/api/projects/${project.id}`).send(project);
  });

  app.get('/projects', { config: READ, schema: listProjectsRoute }, async (request) => {
    const { cursor, limit } = request.query;
    return request.tenantDb.read((db) => listProjects({ db, cursor, limit }));
  });

  app.get('/projects/:id', { config: READ, schema: getProjectRoute }, async (request) => {
    return request.tenantDb.read((db) => getProject({ db, id: request.params.id }));
  });

  app.patch('/projects/:id', { config: MANAGE, schema: updateProjectRoute }, async (request) => {
    const versions = acceptedVersions(request.headers['if-match']);
    return request.tenantDb.transaction((db) => updateProject({ db, id: request.params.id, changes: request.body, versions }));
  });

  app.delete('/projects/:id', { config: MANAGE, schema: deleteProjectRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    await request.tenantDb.transaction((db) => deleteProject({ db, id: request.params.id, versions }));
    return reply.code(204).send(null);
  });
}
