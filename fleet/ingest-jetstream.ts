/**
 * Box events from NATS JetStream, shared by several fleet workers
 * (ingest.source 'jetstream').
 *
 * Boxes publish on MQTT (callbox/v1/<id>/events, QoS 1) to the engine's
 * MQTT gateway, which turns the topic into the NATS subject
 * callbox.v1.<id>.events. The stream CALLBOX_EVENTS holds those subjects
 * (work-queue retention: a message goes once it is acknowledged; replicated
 * ingest.streamReplicas times), and every worker pulls from one durable
 * consumer, `fleet-ingest`: each message goes to one worker at a time. A
 * message is acknowledged only once its events are committed (Ingest's
 * onCommitted); a worker that dies holding messages loses them to another
 * worker when their ack wait runs out (redelivered: the store's dedup by
 * event id stores each event once, and the box is receipted again).
 * A message that can never be stored (rejected by Ingest) is terminated.
 *
 * Backpressure: while Ingest is full the loop waits for room, so no more is
 * pulled; the stream keeps the rest.
 */
import {
  AckPolicy,
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  type JsMsg,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
} from 'nats';
import { NAMESPACE } from '../shared/contract/topics.js';
import { describeError } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import type { Ingest } from './ingest.js';

const log = getLogger('fleet:ingest-jetstream');

export const EVENTS_STREAM = 'CALLBOX_EVENTS';
export const EVENTS_CONSUMER = 'fleet-ingest';
/** The NATS subjects the MQTT gateway publishes box events on (topic levels become subject tokens). */
export const EVENTS_SUBJECT = `${NAMESPACE.replaceAll('/', '.')}.*.events`;

export interface JetStreamIngestOptions {
  servers: string[];
  user?: string;
  pass?: string;
  replicas: number;
  /** This worker's connection name (the engine's monitoring shows it). */
  name: string;
  /** Unacknowledged messages are given to another worker after (default 30 s). */
  ackWaitMs?: number;
  /** Messages pulled ahead by this worker at most (default 2000). */
  pullMax?: number;
}

export class JetStreamIngest {
  readonly counters = { pulled: 0, acked: 0, terminated: 0 };
  private stopped = false;
  private loop: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ingest: Ingest,
    private readonly opts: JetStreamIngestOptions,
  ) {}

  static async start(ingest: Ingest, opts: JetStreamIngestOptions): Promise<JetStreamIngest> {
    if (opts.servers.length === 0) {
      throw new Error('ingest.source jetstream needs ingest.natsUrls (the NATS client URLs of the engine nodes)');
    }
    const nc = await connect({
      servers: opts.servers,
      name: opts.name,
      ...(opts.user ? { user: opts.user, pass: opts.pass } : {}),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: true,
    });
    const j = new JetStreamIngest(nc, ingest, opts);
    try {
      await j.ensureStream();
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e;
    }
    j.loop = j.run();
    return j;
  }

  /** The stream and the shared durable consumer (made by whichever worker comes first; the same again is a no-op). */
  private async ensureStream(): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    const stream = {
      name: EVENTS_STREAM,
      subjects: [EVENTS_SUBJECT],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: this.opts.replicas,
      max_age: nanos(7 * 86_400_000),
    };
    try {
      await jsm.streams.add(stream);
    } catch (e) {
      const info = await jsm.streams.info(EVENTS_STREAM).catch(() => undefined);
      if (!info) throw new Error(`cannot create the JetStream stream ${EVENTS_STREAM}: ${describeError(e)}`);
      if (info.config.num_replicas !== this.opts.replicas) {
        log.warn(
          { has: info.config.num_replicas, want: this.opts.replicas },
          'the events stream exists with another replica count: kept as it is',
        );
      }
    }
    const settings = { ack_wait: nanos(this.opts.ackWaitMs ?? 30_000), max_ack_pending: 100_000 };
    try {
      await jsm.consumers.add(EVENTS_STREAM, {
        durable_name: EVENTS_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_deliver: -1,
        ...settings,
      });
    } catch (e) {
      // Made before with other settings (another worker's ackWaitMs): brought to ours, or used as it is.
      await jsm.consumers
        .update(EVENTS_STREAM, EVENTS_CONSUMER, settings)
        .catch((err) =>
          log.warn({ err: describeError(err), first: describeError(e) }, 'events consumer kept as it is'),
        );
    }
  }

  private async run(): Promise<void> {
    const js = this.nc.jetstream();
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(EVENTS_STREAM, EVENTS_CONSUMER);
        // Pulls that expire every 2 s (heartbeats every 1 s): when an engine node dies and the consumer's
        // leader moves, the next pull finds the new one (with the 30 s default, pulling stalled for good).
        this.messages = await consumer.consume({ max_messages: this.opts.pullMax ?? 2000, expires: 2000 });
        for await (const m of this.messages) {
          this.handle(m);
          if (!this.ingest.hasRoom()) await this.ingest.whenRoom();
          if (this.stopped) break;
        }
      } catch (e) {
        if (this.stopped) return;
        log.warn({ err: describeError(e) }, 'pulling box events from JetStream failed; trying again');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private handle(m: JsMsg): void {
    this.counters.pulled++;
    const parts = m.subject.split('.');
    const deviceId = parts[parts.length - 2] ?? '';
    const topic = `${NAMESPACE}/${deviceId}/events`;
    const ok = this.ingest.accept(deviceId, topic, Buffer.from(m.data), () => {
      m.ack();
      this.counters.acked++;
    });
    if (!ok) {
      // Never storable: sending it again would not make it valid.
      m.term();
      this.counters.terminated++;
    }
  }

  /** Stop pulling; what Ingest holds is stored and acknowledged by Ingest.stop() (call this first). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    // Acks of what is still queued go out when Ingest drains; then the connection closes.
    await this.ingest.drain();
    await this.nc.drain().catch(() => undefined);
  }
}
