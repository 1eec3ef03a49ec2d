/**
 * The dashboard's files on the fleet's HTTP server: the built single-page app (./ui-root.ts) at `/` with
 * @fastify/static, and index.html for the app's own paths (deep links such as /boxes/CB-0001), which the
 * app routes. Hashed assets are cached for a year, index.html never. Anything else keeps the API's 404.
 * Without a build, `/` says how to make one.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { UI_MISSING, uiRoot } from './ui-root.js';

/** The app's pages (fleet/web/ui/src/main.ts ROUTES). */
const APP_PATHS = [
  '/signin',
  '/fleet',
  '/boxes/:ref',
  '/clinics',
  '/clinics/:id',
  '/alerts',
  '/voicemail',
  '/provisioning',
];

const NO_CACHE = 'no-cache, no-store, must-revalidate';

export async function uiStatic(app: FastifyInstance, opts: { root?: string | null } = {}): Promise<void> {
  const root = opts.root === undefined ? uiRoot() : opts.root;
  if (!root) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).type('text/plain').send(`${UI_MISSING}\n`),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    setHeaders: (res, path) => {
      res.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : NO_CACHE);
    },
  });
  for (const path of APP_PATHS) {
    app.get(path, { schema: { hide: true } }, (_req, reply) =>
      reply.header('cache-control', NO_CACHE).sendFile('index.html'),
    );
  }
}
