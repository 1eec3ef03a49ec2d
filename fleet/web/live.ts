/**
 * GET /api/v1/live: server-sent events for the pages, so they stay live without reloading.
 *
 *   event: presence  {deviceId, serial, clinicId, online, lastSeen, reason}
 *   event: event     {id, type, deviceId, seq, at, receivedAt}   (an event stored; no body: no caller numbers)
 *   event: alert     {alertId, clinicId, change, state, condition, severity, shortCode, deviceId, by, at}
 *   event: calllog   {clinicId}   the clinic's call log or call-back list changed (fleet/patients): read it again
 *   event: reset     {reason}   the client missed more than the server kept: reload, then listen on
 *
 * Every message has an id (<run>.<n>, run: this server's start); a client reconnecting with Last-Event-ID
 * gets what it missed from a ring of the last http.liveBuffer messages, or `reset`. A clinic user gets its
 * clinic's messages only. A stream ends with its session: at sign-out, or at the session's absolute expiry. A comment line every 15 s keeps proxies from closing the stream. Per connection
 * the cost is a socket and a string compare per message: messages are serialised once, not per client; a
 * client that does not read (more than 1 MiB queued) is dropped and reconnects with its Last-Event-ID.
 */
import '@fastify/swagger';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { getLogger } from '../../shared/log.js';
import type { Fleet } from '../fleet.js';
import type { Caller } from '../ops-api.js';
import { ErrorBodySchema } from './errors.js';
import { requireSession } from './session.js';

const log = getLogger('fleet:web:live');
const HEARTBEAT_MS = 15_000;
const MAX_QUEUED_BYTES = 1_048_576;

interface Message {
  n: number;
  clinicId: string | null;
  /** The whole SSE message, serialised once. */
  text: string;
}

interface Client {
  reply: FastifyReply;
  clinicId: string | null;
  /** The session behind the stream: it ends at sign-out, or at the session's absolute expiry. */
  session: string | null;
  expiresAt: number;
}

export class LiveStream {
  /** This run: ids of an earlier run (a restart) cannot be resumed. */
  readonly run = Date.now().toString(36);
  private readonly ring: (Message | undefined)[];
  private n = 0;
  private readonly clients = new Set<Client>();
  private readonly boxes = new Map<string, { serial: string; clinicId: string | null }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private refresh: NodeJS.Timeout | undefined;
  /** Publishing in arrival order while a box is looked up. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly fleet: Fleet,
    size: number,
  ) {
    this.ring = new Array(size);
  }

  get size(): number {
    return this.clients.size;
  }

  async start(): Promise<void> {
    await this.loadBoxes();
    const bus = this.fleet.bus;
    bus.on('presence.changed', this, (p) =>
      this.enqueue(p.deviceId, (box) => [
        'presence',
        {
          deviceId: p.deviceId,
          serial: box?.serial ?? null,
          clinicId: box?.clinicId ?? null,
          online: p.online,
          lastSeen: this.fleet.presence.lastSeen(p.deviceId)
            ? new Date(this.fleet.presence.lastSeen(p.deviceId) as number).toISOString()
            : p.at,
          reason: p.reason,
        },
      ]),
    );
    bus.on('event.stored', this, ({ event }) =>
      this.enqueue(event.deviceId, () => [
        'event',
        {
          id: event.id,
          type: event.type,
          deviceId: event.deviceId,
          seq: event.seq,
          at: event.at,
          receivedAt: event.receivedAt,
        },
      ]),
    );
    bus.on('alert.changed', this, (a) => {
      this.chain = this.chain.then(() => this.publish('alert', a, a.clinicId));
    });
    bus.on('calllog.changed', this, ({ clinicIds }) => {
      this.chain = this.chain.then(() => {
        for (const clinicId of clinicIds) this.publish('calllog', { clinicId }, clinicId);
      });
    });
    const note = ({ box }: { box: { deviceId: string | null; serial: string; clinicId: string | null } }) => {
      if (box.deviceId) this.boxes.set(box.deviceId, { serial: box.serial, clinicId: box.clinicId });
    };
    bus.on('box.approved', this, note);
    bus.on('box.assigned', this, note);
    bus.on('box.decommissioned', this, ({ box }) => {
      if (box.deviceId) this.boxes.delete(box.deviceId);
    });
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    // Boxes are kept up to date from the bus (approved, assigned, decommissioned); read again now and then.
    this.refresh = setInterval(
      () => void this.loadBoxes().catch((err) => log.warn({ err }, 'refreshing the boxes failed')),
      60_000,
    );
    this.refresh.unref();
  }

  private async loadBoxes(): Promise<void> {
    const seen = new Map<string, { serial: string; clinicId: string | null }>();
    for (let after: string | undefined; ; ) {
      const page = await this.fleet.store.listBoxes({ limit: 1000, ...(after ? { after } : {}) });
      for (const b of page) if (b.deviceId) seen.set(b.deviceId, { serial: b.serial, clinicId: b.clinicId });
      if (page.length < 1000) break;
      after = page[page.length - 1]?.serial;
    }
    this.boxes.clear();
    for (const [k, v] of seen) this.boxes.set(k, v);
  }

  private enqueue(
    deviceId: string,
    make: (box: { serial: string; clinicId: string | null } | undefined) => [string, unknown],
  ): void {
    this.chain = this.chain
      .then(async () => {
        let box = this.boxes.get(deviceId);
        if (!box) {
          const b = await this.fleet.store.getBoxByDeviceId(deviceId);
          if (b) {
            box = { serial: b.serial, clinicId: b.clinicId };
            this.boxes.set(deviceId, box);
          }
        }
        const [event, data] = make(box);
        this.publish(event, data, box?.clinicId ?? null);
      })
      .catch((err) => log.warn({ err }, 'live message not sent'));
  }

  /** Send one message to every client allowed to see it, and keep it in the ring. */
  publish(event: string, data: unknown, clinicId: string | null): void {
    const n = ++this.n;
    const text = `id: ${this.run}.${n}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    const m: Message = { n, clinicId, text };
    this.ring[n % this.ring.length] = m;
    for (const c of this.clients) if (this.allowed(c, m)) this.write(c, text);
  }

  private allowed(c: Client, m: Message): boolean {
    return c.clinicId === null || c.clinicId === m.clinicId;
  }

  private write(c: Client, text: string): void {
    const raw = c.reply.raw;
    if (raw.writableLength > MAX_QUEUED_BYTES) {
      log.info('live client not reading: dropped (it resumes with Last-Event-ID)');
      this.clients.delete(c);
      raw.destroy();
      return;
    }
    raw.write(text);
  }

  private beat(): void {
    const now = Date.now();
    for (const c of this.clients) {
      if (now >= c.expiresAt) this.end(c);
      else this.write(c, ': keep-alive\n\n');
    }
  }

  private end(c: Client): void {
    this.clients.delete(c);
    c.reply.raw.end();
  }

  /** A session ended (sign-out, revoked): its streams end now. */
  endSession(idHash: string): void {
    for (const c of this.clients) if (c.session === idHash) this.end(c);
  }

  /** What a client resuming after `lastEventId` missed: the messages, or null when they are gone (reset). */
  missed(lastEventId: string, c: Pick<Client, 'clinicId'>): string[] | null {
    const m = /^([0-9a-z]+)\.(\d+)$/.exec(lastEventId.trim());
    if (!m || m[1] !== this.run) return null;
    const last = Number(m[2]);
    if (last > this.n) return null;
    const oldest = Math.max(1, this.n - this.ring.length + 1);
    if (last + 1 < oldest) return null;
    const out: string[] = [];
    for (let i = last + 1; i <= this.n; i++) {
      const msg = this.ring[i % this.ring.length];
      if (msg && msg.n === i && this.allowed(c as Client, msg)) out.push(msg.text);
    }
    return out;
  }

  attach(
    reply: FastifyReply,
    caller: Caller,
    lastEventId: string | undefined,
    session: { idHash: string; expiresAt: string } | null = null,
  ): void {
    const client: Client = {
      reply,
      clinicId: caller.role === 'clinic' ? caller.clinicId : null,
      session: session?.idHash ?? null,
      expiresAt: session ? Date.parse(session.expiresAt) : Number.POSITIVE_INFINITY,
    };
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write('retry: 3000\n\n');
    if (lastEventId) {
      const missed = this.missed(lastEventId, client);
      if (missed === null) {
        raw.write(
          `id: ${this.run}.${this.n}\nevent: reset\ndata: ${JSON.stringify({
            reason: 'the messages since your Last-Event-ID are no longer kept: reload, then listen on',
          })}\n\n`,
        );
      } else {
        for (const text of missed) raw.write(text);
      }
    }
    this.clients.add(client);
    raw.on('close', () => this.clients.delete(client));
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.refresh);
    this.fleet.bus.removeAll(this);
    await this.chain.catch(() => undefined);
    for (const c of this.clients) c.reply.raw.end();
    this.clients.clear();
  }
}

export function liveRoute(app: FastifyInstance, live: LiveStream): void {
  app.get(
    '/api/v1/live',
    {
      schema: {
        tags: ['live'],
        summary:
          'server-sent events: presence, event, alert, reset; resume with Last-Event-ID; clinic users: their clinic only',
        response: { 401: ErrorBodySchema },
      },
      preHandler: requireSession,
    },
    async (req, reply) => {
      const last = req.headers['last-event-id'];
      live.attach(reply, req.caller as Caller, typeof last === 'string' ? last : undefined, req.webSession);
    },
  );
}
