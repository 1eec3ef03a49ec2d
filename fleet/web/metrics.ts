/**
 * GET /metrics in the Prometheus text format (prom-client), one registry per fleet: boxes online, events
 * ingested and the ingest latency (arrival to commit), queue depths (ingest, the external broker's
 * queue, the boxes' outboxes as their telemetry says), broker refusals, alerts by state, deliveries
 * failed, and the default process metrics. No session: meant for the loopback or the ops network; with
 * http.metricsTokenFile it asks for `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Fleet } from '../fleet.js';
import { HttpError } from './errors.js';

/** Alert figures from the alerts feature when it runs (counts by state, failed deliveries). */
export interface AlertFigures {
  byState(): Promise<Record<string, number>>;
  deliveriesFailed(): Promise<number>;
}

export class FleetMetrics {
  readonly registry = new Registry();
  private readonly outbox = new Map<string, number>();

  constructor(
    private readonly fleet: Fleet,
    alerts: () => AlertFigures | undefined,
  ) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    new Gauge({
      name: 'callbox_boxes_online',
      help: 'boxes online now (heard within presence.offlineAfterS)',
      registers: [r],
      collect() {
        this.set(fleet.presence.onlineCount());
      },
    });
    const ingested = new Counter({
      name: 'callbox_events_ingested_total',
      help: 'events stored for the first time, by type',
      labelNames: ['type'],
      registers: [r],
    });
    fleet.bus.on('event.stored', this, ({ event }) => ingested.inc({ type: event.type }));
    const latency = new Histogram({
      name: 'callbox_ingest_latency_seconds',
      help: 'from an events message arriving at the fleet to its commit in the store',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    fleet.ingest.onLatency = (s) => latency.observe(s);
    new Gauge({
      name: 'callbox_ingest_queue_events',
      help: 'events received and not yet stored',
      registers: [r],
      collect() {
        this.set(fleet.ingest.pending);
      },
    });
    const outbox = this.outbox;
    fleet.bus.on('telemetry', this, ({ deviceId, telemetry }) => {
      outbox.set(deviceId, telemetry.outboxDepth);
    });
    fleet.bus.on('box.decommissioned', this, ({ box }) => {
      if (box.deviceId) outbox.delete(box.deviceId);
    });
    new Gauge({
      name: 'callbox_box_outbox_events',
      help: "events waiting in the boxes' outboxes, summed, as their last telemetry said",
      registers: [r],
      collect() {
        let n = 0;
        for (const v of outbox.values()) n += v;
        this.set(n);
      },
    });
    new Gauge({
      name: 'callbox_broker_queue_messages',
      help: "external broker: messages stored in the broker's queue ($SYS); 0 with the embedded broker",
      registers: [r],
      collect() {
        this.set(fleet.queueWatch?.state.stored ?? 0);
      },
    });
    const refusals = new Gauge({
      name: 'callbox_broker_refusals',
      help: 'embedded broker: refusals since it started, by kind (auth, publish, subscribe, size, rate, claim)',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        const s = fleet.broker?.lastStats;
        refusals.set({ kind: 'auth' }, s?.authFailed ?? 0);
        refusals.set({ kind: 'publish' }, s?.publishDenied ?? 0);
        refusals.set({ kind: 'subscribe' }, s?.subscribeDenied ?? 0);
        refusals.set({ kind: 'size' }, s?.tooLarge ?? 0);
        refusals.set({ kind: 'rate' }, s?.rateLimited ?? 0);
        refusals.set({ kind: 'claim' }, s?.claimRefused ?? 0);
      },
    });
    new Gauge({
      name: 'callbox_messages_rejected',
      help: 'messages the fleet refused (bad JSON, schema, device id mismatch) since it started',
      registers: [r],
      collect() {
        this.set(fleet.metrics().rejectedMessages);
      },
    });
    const byState = new Gauge({
      name: 'callbox_alerts',
      help: 'alerts by state (open, acknowledged; resolved ones are not counted)',
      labelNames: ['state'],
      registers: [r],
      async collect() {
        const a = alerts();
        if (!a) return;
        for (const [state, n] of Object.entries(await a.byState())) byState.set({ state }, n);
      },
    });
    new Gauge({
      name: 'callbox_alert_deliveries_failed',
      help: 'alert deliveries (SMS, e-mail, webhook) that failed, as the alert store has them',
      registers: [r],
      async collect() {
        const a = alerts();
        this.set(a ? await a.deliveriesFailed() : 0);
      },
    });
  }

  stop(): void {
    this.fleet.bus.removeAll(this);
    if (this.fleet.ingest.onLatency) this.fleet.ingest.onLatency = undefined;
  }
}

function readToken(file: string): string {
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length < 16) throw new Error('the token is shorter than 16 characters');
    return t;
  } catch (e) {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `http.metricsTokenFile ${file} cannot be used: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

export function metricsRoute(app: FastifyInstance, metrics: FleetMetrics, tokenFile: string | null): void {
  const token = tokenFile ? Buffer.from(readToken(tokenFile)) : null;
  app.get(
    '/metrics',
    { schema: { tags: ['health'], summary: 'Prometheus metrics (no session; bearer token if configured)' } },
    async (req, reply) => {
      if (token) {
        const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
        if (given.length !== token.length || !timingSafeEqual(given, token)) {
          reply.header('www-authenticate', 'Bearer');
          throw new HttpError(
            401,
            'NoSession',
            '/metrics needs Authorization: Bearer <the token in http.metricsTokenFile>',
          );
        }
      }
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}
