/**
 * What a request body may be: JSON only (Fastify's parser, which refuses __proto__ and constructor
 * keys), at most bodyLimitBytes. Anything else is answered 415 before a handler runs.
 */
import type { App } from '../app.ts';

export function installBodyLimits(app: App): void {
  // Fastify also parses text/plain by default; no route here takes text, so a text body is a 415.
  app.removeContentTypeParser('text/plain');
}
