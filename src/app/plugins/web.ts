/**
 * The web app (web/, built by Vite into web/dist) on every tenant host: its content-hashed files
 * under /assets/ with a year-long immutable cache, and index.html for `/` and the paths of the
 * app's pages, so that deep links (/projects/<id>, /reset-password#token=…) work after a reload.
 * These are ordinary routes: tenancy and rate limits apply, so a host that names no tenant is still
 * 404 tenant-not-found. Without a build the API still serves, and the app's paths say how to build it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { App } from '../app.ts';
import { pathOf } from '../problem.ts';

/** Where `npm run build:web` writes the app. */
export const WEB_DIST_DIR = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/** Path prefixes the server answers itself; an unknown path under them stays a 404 (or 405) problem. */
const SERVER_PREFIXES = ['/api', '/healthz', '/readyz', '/problems', '/assets'];

function isServerPath(path: string): boolean {
  return SERVER_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/**
 * The first segments of the app's pages (web/src/router.tsx; web.test.ts keeps the two in step).
 * Only these get the page: any other path (a file name such as favicon.ico, /etc/passwd, a dot
 * segment or percent-encoding) is no page of the app and gets the ordinary 404.
 */
export const APP_SECTIONS: readonly string[] = ['sign-in', 'forgot-password', 'reset-password', 'invitation', 'projects', 'tasks', 'account', 'users'];

/** Whether a path names a page of the app: `/`, or a section followed by words and ids. */
function isAppPath(path: string): boolean {
  const segments = path.split('/').slice(1);
  if (segments.at(-1) === '') segments.pop();
  if (segments.length === 0) return true;
  return APP_SECTIONS.includes(segments[0] ?? '') && segments.every((segment) => /^[A-Za-z0-9_-]+$/.test(segment));
}

export interface WebAppOptions {
  /** The Vite build to serve; web/dist by default. */
  distDir?: string;
}

/** The plugin; register it at the root (`app.register(webApp())`). */
export function webApp(options: WebAppOptions = {}): (app: App) => Promise<void> {
  const distDir = options.distDir ?? WEB_DIST_DIR;
  const indexFile = join(distDir, 'index.html');

  async function serveIndex(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = pathOf(request.url);
    if (isServerPath(path) || !isAppPath(path)) {
      // The ordinary 404 (or 405 with Allow, for a path that takes other methods).
      reply.callNotFound();
      return reply;
    }
    let html: Buffer;
    try {
      // Read on every request (it is small and cached by the OS), so a rebuild needs no restart.
      html = await readFile(indexFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new AppError('not-found', 'the web app is not built on this server: run `npm run build:web` (scripts/start.sh does it for you), then reload; the API under /api works without it');
    }
    // Security headers (the HTML Content-Security-Policy, no-store) are set by plugins/security-headers.ts.
    return reply.type('text/html; charset=utf-8').send(html);
  }

  return async (app) => {
    // What the file server refuses (a directory, a malformed or non-canonical path) is, to a
    // client, a file that is not there: the ordinary 404, never a 500 or a hint at the file tree.
    const parentErrorHandler = app.errorHandler;
    app.setErrorHandler((error, request, reply) => {
      const status = (error as { statusCode?: unknown }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        reply.callNotFound();
        return;
      }
      parentErrorHandler.call(app, error, request, reply);
    });
    // Registered even before a build exists, so that building while the server runs is enough.
    await app.register(fastifyStatic, {
      root: join(distDir, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      redirect: false,
      list: false,
      dotfiles: 'ignore',
      // Vite writes the assets flat, with hashed names: nothing else (no directory) is served.
      allowedPath: (pathName) => /^\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(pathName),
      // File names carry a hash of their content: a changed file is a new name.
      maxAge: '365d',
      immutable: true,
      suppressWarning: true,
    });
    app.get('/*', serveIndex);
  };
}
