/**
 * Simulated boxes for `npm run bench:fleet -- --cluster` (bench/fleet-cluster.ts), in their own process:
 * light mqtt.js clients with their own engine users, spread over the engine's MQTT listeners, sending
 * their events as EventBatches (shared/contract/delivery.ts) of up to `batch` events (or what 1 s gathered)
 * at the asked rate.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';

interface Start {
  t: 'start';
  urls: string[];
  boxes: string[];
  password: string;
  connectPerSec: number;
  eventsPerBoxPerSec: number;
  batch: number;
}

interface Box {
  id: string;
  client: MqttClient;
  topic: string;
  stream: string;
  boot: string;
  seq: number;
  last: number;
  pending: unknown[];
  /** When the oldest pending event was made (a batch waits at most 1 s, as the outbox's pump would). */
  since: number;
}

const boxes: Box[] = [];
let sent = 0;
let paused = true;

function flush(b: Box): void {
  if (b.pending.length === 0 || !b.client.connected) return;
  const events = b.pending.splice(0);
  b.since = 0;
  const after = b.last;
  b.last = b.seq;
  b.client.publish(b.topic, JSON.stringify({ v: 1, deviceId: b.id, stream: b.stream, floor: 0, after, events }), {
    qos: 1,
  });
  sent += events.length;
}

async function start(m: Start): Promise<void> {
  for (const [i, id] of m.boxes.entries()) {
    const url = new URL(m.urls[i % m.urls.length] as string);
    const client = mqtt.connect({
      servers: m.urls.map((_, k) => {
        const u = new URL(m.urls[(i + k) % m.urls.length] as string);
        return { host: u.hostname, port: Number(u.port) };
      }),
      host: url.hostname,
      username: id,
      password: m.password,
      clientId: id,
      keepalive: 120,
      reconnectPeriod: 2000,
      connectTimeout: 60_000,
    });
    client.on('error', () => undefined);
    boxes.push({
      id,
      client,
      topic: deviceTopics(id).events,
      stream: newBootId(),
      boot: newBootId(),
      seq: 0,
      last: 0,
      pending: [],
      since: 0,
    });
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10_000 / m.connectPerSec));
  }
  const total = boxes.length * m.eventsPerBoxPerSec;
  let carry = 0;
  let next = 0;
  let lastT = Date.now();
  setInterval(() => {
    const now = Date.now();
    if (paused) {
      lastT = now;
      return;
    }
    carry += (total * (now - lastT)) / 1000;
    lastT = now;
    while (carry >= 1) {
      carry--;
      const b = boxes[next++ % boxes.length] as Box;
      b.seq++;
      if (b.pending.length === 0) b.since = now;
      b.pending.push({
        v: 1,
        id: newEventId(),
        deviceId: b.id,
        bootId: b.boot,
        seq: b.seq,
        at: new Date().toISOString(),
        type: 'call.incoming',
        body: { callId: `c${b.seq}`, number: null, withheld: true, inHours: true, repeatCaller: false, waiting: false },
      });
      if (b.pending.length >= m.batch) flush(b);
    }
    for (const b of boxes) if (b.since && now - b.since >= 1000) flush(b);
  }, 50);
}

process.on('message', (m: Start | { t: 'stats' } | { t: 'pause' } | { t: 'resume' }) => {
  if (m.t === 'start') void start(m);
  else if (m.t === 'pause') {
    paused = true;
    for (const b of boxes) flush(b);
  } else if (m.t === 'resume') paused = false;
  else if (m.t === 'stats') process.send?.({ connected: boxes.filter((b) => b.client.connected).length, sent });
});
