/** Every route a Fastify server has, read from printRoutes (Fastify has no other public list). */
import type { FastifyInstance } from 'fastify';

/** `METHOD /full/path` for every route of a ready server, HEAD included. */
export function routesOf(app: FastifyInstance): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const parents: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(.*)$/.exec(line);
    if (!m) continue;
    // Each level of the tree is indented by four characters ('│   ' or '    ').
    const depth = (m[1] ?? '').length / 4;
    const url = `${depth === 0 ? '' : (parents[depth - 1] ?? '')}${m[2] ?? ''}`;
    parents[depth] = url;
    parents.length = depth + 1;
    const methods = /\(([A-Z, ]+)\)/.exec(m[3] ?? '')?.[1] ?? '';
    for (const method of methods.split(', ').filter((x) => x !== '')) routes.push({ method, url });
  }
  return routes;
}
