/** /api/projects/:id/workflow: tenant → authentication and permission → schema → transaction → command. */
import type { App } from '../../app.ts';
import { workActorOf } from '../actor.ts';
import { acceptedVersions, etagOf } from '../preconditions.ts';
import { getWorkflow, replaceWorkflow } from './commands.ts';
import { getWorkflowRoute, replaceWorkflowRoute } from './schema.ts';

export function workflowRoutes(app: App): void {
  app.get('/projects/:id/workflow', { config: { permission: 'work.read' }, schema: getWorkflowRoute }, async (request, reply) => {
    const workflow = await request.tenantDb.read((db) => getWorkflow({ db, projectId: request.params.id }));
    return reply.header('etag', etagOf(workflow.version)).send(workflow);
  });

  app.put('/projects/:id/workflow', { config: { permission: 'workflows.manage' }, schema: replaceWorkflowRoute }, async (request, reply) => {
    const versions = acceptedVersions(request.headers['if-match']);
    const actor = workActorOf(request.principal);
    const workflow = await request.tenantDb.transaction((db) => replaceWorkflow({ db, projectId: request.params.id, change: request.body, versions, actor }));
    return reply.header('etag', etagOf(workflow.version)).send(workflow);
  });
}
