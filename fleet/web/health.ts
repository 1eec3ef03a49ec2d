/**
 * GET /health: 200 {status: "ready"} when the store answers and the fleet is connected to its broker
 * (and the embedded broker is running); 503 {status: "unavailable"} naming the part that is down.
 * No session needed, no patient data.
 */
import '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { Type } from '../../shared/schema.js';
import type { Fleet } from '../fleet.js';

const Part = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) });
export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  store: Part,
  broker: Part,
});

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function healthOf(fleet: Fleet, timeoutMs = 2000) {
  const store = await within(fleet.store.schemaVersion(), timeoutMs, 'the store').then(
    () => ({ ok: true }),
    (e: unknown) => ({ ok: false, detail: e instanceof Error ? e.message : String(e) }),
  );
  const connected = fleet.client?.connected === true;
  const embeddedUp = fleet.broker ? fleet.broker.pid !== undefined : true;
  const broker =
    connected && embeddedUp
      ? { ok: true }
      : {
          ok: false,
          detail: !embeddedUp
            ? 'the embedded broker is not running (restarting?)'
            : `the fleet is not connected to its broker (${fleet.brokerUrl})`,
        };
  return { status: store.ok && broker.ok ? ('ready' as const) : ('unavailable' as const), store, broker };
}

export function healthRoute(app: FastifyInstance, fleet: Fleet): void {
  app.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'ready when the store and the broker are (no session needed)',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_req, reply) => {
      const h = await healthOf(fleet);
      return reply.code(h.status === 'ready' ? 200 : 503).send(h);
    },
  );
}
