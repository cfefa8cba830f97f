/** /api/tasks/:id/comments: tenant → authentication and permission → schema → transaction → command. */
import type { App } from '../../app.ts';
import { workActorOf } from '../actor.ts';
import { createComment, deleteComment, editComment, listComments } from './commands.ts';
import { addCommentRoute, deleteCommentRoute, editCommentRoute, listCommentsRoute } from './schema.ts';

const READ = { permission: 'work.read' } as const;
const WRITE = { permission: 'work.write' } as const;

export function commentRoutes(app: App): void {
  app.get('/tasks/:id/comments', { config: READ, schema: listCommentsRoute }, async (request) => {
    const { cursor, limit } = request.query;
    return request.tenantDb.read((db) => listComments({ db, taskId: request.params.id, cursor, limit }));
  });

  app.post('/tasks/:id/comments', { config: WRITE, schema: addCommentRoute }, async (request, reply) => {
    const actor = workActorOf(request.principal);
    const comment = await request.tenantDb.transaction((db) => createComment({ db, actor, taskId: request.params.id, body: request.body.body }));
    return reply.code(201).header('location', `/api/tasks/${comment.taskId}/comments/${comment.id}`).send(comment);
  });

  app.patch('/tasks/:id/comments/:commentId', { config: WRITE, schema: editCommentRoute }, async (request) => {
    const actor = workActorOf(request.principal);
    const { id, commentId } = request.params;
    return request.tenantDb.transaction((db) => editComment({ db, actor, taskId: id, commentId, body: request.body.body }));
  });

  app.delete('/tasks/:id/comments/:commentId', { config: WRITE, schema: deleteCommentRoute }, async (request, reply) => {
    const actor = workActorOf(request.principal);
    const { id, commentId } = request.params;
    await request.tenantDb.transaction((db) => deleteComment({ db, actor, taskId: id, commentId }));
    return reply.code(204).send(null);
  });
}
