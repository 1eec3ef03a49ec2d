/**
 * A lightweight box for cluster tests and benchmarks: the box's real durable
 * outbox (device/uplink/outbox.ts on its own SQLite file: EventBatches,
 * receipts, resends) behind a plain mqtt.js client with the box's own
 * credentials and several broker addresses (mqtt.js moves to the next one
 * when a connection fails). No modem, no call handling: events are recorded
 * by the caller (record()).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Store } from '../../device/store/store.js';
import { UPLINK_MIGRATIONS } from '../../device/uplink/migrations.js';
import { Outbox } from '../../device/uplink/outbox.js';
import type { EventBody, EventType } from '../../shared/contract/events.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newBootId } from '../../shared/ids.js';

export interface OutboxBoxOptions {
  deviceId: string;
  password: string;
  /** Broker URLs (mqtt://host:port), tried in turn. */
  urls: string[];
  /** Folder for the outbox file. */
  dir: string;
  receiptTimeoutMs?: number;
  publishBatch?: number;
  /**
   * QoS of the receipt subscription (default 1, as the box). 0 on NATS 2.9: after an engine node died, a
   * QoS 1 subscription made on another node (a JetStream consumer in $MQTT_msgs) was granted and delivered
   * nothing; a lost receipt costs a resend only.
   */
  receiptQos?: 0 | 1;
  /** A new MQTT client id at each reconnection (<deviceId>-<n>; see connect()). */
  freshClientId?: boolean;
}

export class OutboxBox {
  client!: MqttClient;
  /** Connections lost, and how long each took to come back (ms). */
  readonly outages: { at: number; backMs?: number }[] = [];
  private connections = 0;
  /** The last connection error (diagnostics). */
  lastError: string | undefined;
  private constructor(
    readonly deviceId: string,
    readonly outbox: Outbox,
    private readonly store: Store,
  ) {}

  static async start(o: OutboxBoxOptions): Promise<OutboxBox> {
    mkdirSync(o.dir, { recursive: true });
    const store = await Store.open({
      file: join(o.dir, `${o.deviceId}.db`),
      migrations: { uplink: UPLINK_MIGRATIONS },
    });
    const outbox = new Outbox(store, {
      bootId: newBootId(),
      maxEvents: 100_000,
      publishBatch: o.publishBatch ?? 50,
      minFreeBytes: 1,
      receiptTimeoutMs: o.receiptTimeoutMs ?? 3000,
      receiptTimeoutMaxMs: o.receiptTimeoutMs ?? 3000,
      flushDelayMs: 5,
    });
    await outbox.open();
    const box = new OutboxBox(o.deviceId, outbox, store);
    box.connect(o);
    return box;
  }

  private connect(o: OutboxBoxOptions): void {
    const t = deviceTopics(o.deviceId);
    const servers = o.urls.map((u) => {
      const url = new URL(u);
      return { host: url.hostname, port: Number(url.port) };
    });
    const client = mqtt.connect({
      servers,
      username: o.deviceId,
      password: o.password,
      clientId: o.deviceId,
      clean: true,
      keepalive: 10,
      reconnectPeriod: 250,
      connectTimeout: 3000,
    });
    this.client = client;
    client.on('connect', () => {
      const out = this.outages.at(-1);
      if (out && out.backMs === undefined) out.backMs = Date.now() - out.at;
      client.subscribe(t.receipt, { qos: o.receiptQos ?? 1 }, (err) => {
        if (err) return;
        this.outbox.attach({
          deviceId: o.deviceId,
          send: (payload) => client.publishAsync(t.events, payload, { qos: 1 }).then(() => undefined),
        });
      });
    });
    client.on('close', () => {
      this.outbox.detach();
      // NATS 2.9's MQTT gateway keeps a session id's lock on a node that died: a box coming back to another
      // node under the same id was connected and heard nothing. A fresh id per connection (clean sessions).
      if (o.freshClientId) client.options.clientId = `${o.deviceId}-${(++this.connections).toString(36)}`;
      const out = this.outages.at(-1);
      if (!out || out.backMs !== undefined) this.outages.push({ at: Date.now() });
    });
    client.on('error', (err) => {
      this.lastError = err.message;
    });
    client.on('message', (topic, payload) => {
      if (topic !== t.receipt) return;
      try {
        const r = JSON.parse(payload.toString('utf8')) as { stream: string; seq: number };
        void this.outbox.onReceipt(r);
      } catch {
        /* not a receipt */
      }
    });
  }

  record<K extends EventType>(type: K, body: EventBody<K>) {
    return this.outbox.record(type, body);
  }

  get connected(): boolean {
    return this.client.connected;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
    await this.outbox.close();
    await this.store.close();
  }
}
