/** The Fastify instance type used across the HTTP face, and what it adds to requests and routes. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import type { Tenant } from '../platform/tenants/registry.ts';
import type { TenantDb } from './tenant-db.ts';

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the Host header resolved to; null on routes served on any host. */
    tenant: Tenant | null;
    /** That tenant's database; throws on routes served on any host. */
    readonly tenantDb: TenantDb;
  }
  interface FastifyContextConfig {
    /** 'none': answered on any host, without resolving a tenant (health checks, problem docs). */
    tenancy?: 'none';
  }
}
