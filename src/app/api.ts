/** The API under /api: authentication and permission on every route, then the product and account routes. */
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { accountRoutes } from './accounts/account/routes.ts';
import { authRoutes } from './accounts/auth/routes.ts';
import type { AccountServices } from './accounts/services.ts';
import { userRoutes } from './accounts/users/routes.ts';
import { referenceRoutes } from './openapi/routes.ts';
import { installAuthentication } from './plugins/authenticate.ts';
import type { ApiTokenVerifier } from './plugins/auth.ts';
import { commentRoutes } from './work/comments/routes.ts';
import { peopleRoutes } from './work/people/routes.ts';
import { projectRoutes } from './work/projects/routes.ts';
import { taskRoutes } from './work/tasks/routes.ts';
import { workflowRoutes } from './work/workflows/routes.ts';

/** The /api plugin; register it with `{ prefix: '/api' }`. */
export function api(options: { verifier: ApiTokenVerifier; services: AccountServices }): FastifyPluginCallbackTypebox {
  return (app, _options, done) => {
    installAuthentication(app, { verifier: options.verifier, timeouts: options.services.settings, csrfKey: options.services.csrfKey });
    authRoutes(app, options.services);
    accountRoutes(app, options.services);
    userRoutes(app, options.services);
    projectRoutes(app);
    workflowRoutes(app);
    taskRoutes(app);
    commentRoutes(app);
    peopleRoutes(app);
    referenceRoutes(app);
    done();
  };
}
