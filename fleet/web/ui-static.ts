/**
 * The dashboard's files on the fleet's HTTP server: the built single-page app (./ui-root.ts) at `/` with
 * @fastify/static; every other GET that is not the API (a deep link such as /boxes/CB-0001) answers
 * index.html, so the app routes it. Hashed assets are cached for a year, index.html never. Without a
 * build, `/` says how to make one.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { UI_MISSING, uiRoot } from './ui-root.js';

const NOT_APP = /^\/(api|health|metrics|alerts\/link)(\/|$|\?)/;

export async function uiStatic(app: FastifyInstance, root = uiRoot()): Promise<void> {
  if (!root) {
    app.get('/', async (_req, reply) => reply.code(503).type('text/plain').send(`${UI_MISSING}\n`));
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: true,
    index: ['index.html'],
    setHeaders: (res, path) => {
      res.header(
        'cache-control',
        path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache, no-store, must-revalidate',
      );
    },
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    if ((req.method === 'GET' || req.method === 'HEAD') && !NOT_APP.test(path) && !path.startsWith('/assets/')) {
      return reply.header('cache-control', 'no-cache, no-store, must-revalidate').sendFile('index.html');
    }
    return reply.code(404).send({ error: { code: 'NotFound', message: `no route ${req.method} ${path}` } });
  });
}
