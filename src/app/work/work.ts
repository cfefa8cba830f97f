/** The product API under /api: every route here needs the tenant's API token. */
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { bearerAuthentication, type ApiTokenVerifier } from '../plugins/auth.ts';
import { projectRoutes } from './projects/routes.ts';
import { taskRoutes } from './tasks/routes.ts';

/** The /api plugin; register it with `{ prefix: '/api' }`. */
export function workApi(verifier: ApiTokenVerifier): FastifyPluginCallbackTypebox {
  return (app, _options, done) => {
    app.addHook('onRequest', bearerAuthentication(verifier));
    projectRoutes(app);
    taskRoutes(app);
    done();
  };
}
