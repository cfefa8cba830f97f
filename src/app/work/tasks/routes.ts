/** /api/tasks and /api/projects/:id/tasks: tenant → authentication and permission → schema → transaction → command. */
import type { App } from '../../app.ts';
import { workActorOf } from '../actor.ts';
import { acceptedVersions, etagOf } from '../preconditions.ts';
import { assertProjectExists } from '../projects/commands.ts';
import { createTask, deleteTask, moveTask, updateTask } from './commands.ts';
import { listTaskHistory } from './history.ts';
import { listProjectLabels, listTasks } from './listing.ts';
import { taskOrderOf } from './order.ts';
import { placementOf } from './rank.ts';
import {
  createTaskRoute,
  deleteTaskRoute,
  getTaskRoute,
  listTasksRoute,
  moveTaskRoute,
  projectLabelsRoute,
  taskHistoryRoute,
  updateTaskRoute,
} from './schema.ts';
import { getTask, noSuchTask } from './store.ts';

const READ = { permission: 'work.read' } as const;
const WRITE = { permission: 'work.write' } as const;

export function taskRoutes(app: App): void {
  app.post('/projects/:id/tasks', { config: WRITE, schema: createTaskRoute }, async (request, reply) => {
    const actor = workActorOf(request.principal);
    const task = await request.tenantDb.transaction((db) => createTask({ db, actor, projectId: request.params.id, input: request.body }));
    return reply.code(201).header('location', `/api/tasks/${task.id}`).header('etag', etagOf(task.version)).send(task);
  });

  app.get('/tasks', { config: READ, schema: listTasksRoute }, async (request) => {
    const { cursor, limit, sort, order, ...filter } = request.query;
    const taskOrder = taskOrderOf({ sort, order, q: filter.q });
    return request.tenantDb.read((db) => listTasks({ db, filter, order: taskOrder, cursor, limit }));
  });

  app.get('/tasks/:id', { config: READ, schema: getTaskRoute }, async (request, reply) => {
    const task = await request.tenantDb.read((db) => getTask({ db, id: request.params.id }));
    return reply.header('etag', etagOf(task.version)).send(task);
  });

  app.patch('/tasks/:id', { config: WRITE, schema: updateTaskRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    const actor = workActorOf(request.principal);
    const task = await request.tenantDb.transaction((db) => updateTask({ db, actor, id: request.params.id, changes: request.body, versions }));
    return reply.header('etag', etagOf(task.version)).send(task);
  });

  app.post('/tasks/:id/move', { config: WRITE, schema: moveTaskRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    const actor = workActorOf(request.principal);
    const { toStatusId } = request.body;
    const placement = placementOf(request.body);
    const task = await request.tenantDb.transaction((db) => moveTask({ db, actor, id: request.params.id, versions, placement, ...(toStatusId === undefined ? {} : { toStatusId }) }));
    return reply.header('etag', etagOf(task.version)).send(task);
  });

  app.delete('/tasks/:id', { config: WRITE, schema: deleteTaskRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    await request.tenantDb.transaction((db) => deleteTask({ db, id: request.params.id, versions }));
    return reply.code(204).send(null);
  });

  app.get('/tasks/:id/history', { config: READ, schema: taskHistoryRoute }, async (request) => {
    const { cursor, limit } = request.query;
    return request.tenantDb.read(async (db) => {
      const found = await db.query('SELECT 1 FROM app.tasks WHERE id = $1', [request.params.id]);
      if (found.rowCount === 0) throw noSuchTask();
      return listTaskHistory({ db, taskId: request.params.id, cursor, limit });
    });
  });

  app.get('/projects/:id/labels', { config: READ, schema: projectLabelsRoute }, async (request) => {
    return request.tenantDb.read(async (db) => {
      await assertProjectExists(db, request.params.id);
      return { items: await listProjectLabels({ db, projectId: request.params.id }) };
    });
  });
}
