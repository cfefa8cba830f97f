/** /api/tasks and /api/projects/:id/tasks: tenant → authentication and permission → schema → transaction → command. */
import type { App } from '../../app.ts';
import { acceptedVersions, etagOf } from '../preconditions.ts';
import { createTask, deleteTask, getTask, listTasks, updateTask } from './commands.ts';
import { createTaskRoute, deleteTaskRoute, getTaskRoute, listTasksRoute, updateTaskRoute } from './schema.ts';

const READ = { permission: 'work.read' } as const;
const WRITE = { permission: 'work.write' } as const;

export function taskRoutes(app: App): void {
  app.post('/projects/:id/tasks', { config: WRITE, schema: createTaskRoute }, async (request, reply) => {
    const task = await request.tenantDb.transaction((db) => createTask({ db, projectId: request.params.id, input: request.body }));
    return reply.code(201).header('location', `/api/tasks/${task.id}`).header('etag', etagOf(task.version)).send(task);
  });

  app.get('/tasks', { config: READ, schema: listTasksRoute }, async (request) => {
    const { projectId, status, cursor, limit } = request.query;
    return request.tenantDb.read((db) => listTasks({ db, filter: { projectId, status }, cursor, limit }));
  });

  app.get('/tasks/:id', { config: READ, schema: getTaskRoute }, async (request, reply) => {
    const task = await request.tenantDb.read((db) => getTask({ db, id: request.params.id }));
    return reply.header('etag', etagOf(task.version)).send(task);
  });

  app.patch('/tasks/:id', { config: WRITE, schema: updateTaskRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    const task = await request.tenantDb.transaction((db) => updateTask({ db, id: request.params.id, changes: request.body, versions }));
    return reply.header('etag', etagOf(task.version)).send(task);
  });

  app.delete('/tasks/:id', { config: WRITE, schema: deleteTaskRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    await request.tenantDb.transaction((db) => deleteTask({ db, id: request.params.id, versions }));
    return reply.code(204).send(null);
  });
}
