/**
 * Simulated boxes for bench/fleet.ts, run in their own process so that the
 * fleet's figures are the fleet's: each box is a light mqtt.js client that
 * connects with its own credentials, publishes a retained status, sends
 * telemetry as its heartbeat and events at the asked rate.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';

interface Start {
  t: 'start';
  url: string;
  boxes: { deviceId: string; password: string }[];
  connectPerSec: number;
  eventsPerBoxPerSec: number;
  telemetryEveryS: number;
  seqBase: number;
}

interface Box {
  id: string;
  client: MqttClient;
  topics: ReturnType<typeof deviceTopics>;
  seq: number;
  boot: string;
  up?: boolean;
}

const boxes: Box[] = [];
let sent = 0;
/** Events the broker acknowledged (PUBACK), and events whose publish failed. */
let acked = 0;
let nacked = 0;
let failed = 0;
/** Connections lost after they were up (each box reconnects by itself). */
let drops = 0;
const timers: NodeJS.Timeout[] = [];
let eventTimer: NodeJS.Timeout | undefined;

function telemetry(b: Box): string {
  return JSON.stringify({
    v: 1,
    at: new Date().toISOString(),
    bootId: b.boot,
    uptimeS: Math.floor(process.uptime()),
    softwareVersion: 'bench-1',
    modem: {
      state: 'ready',
      signalDbm: -70,
      registration: 'home',
      operator: 'Bench',
      model: null,
      firmware: null,
      simPresent: true,
    },
    freeDiskBytes: 1e9,
    outboxDepth: 0,
    voicemailsPending: 0,
    configVersion: null,
  });
}

function event(b: Box): string {
  b.seq++;
  return JSON.stringify({
    v: 1,
    id: newEventId(),
    deviceId: b.id,
    bootId: b.boot,
    seq: b.seq,
    at: new Date().toISOString(),
    type: 'call.incoming',
    body: {
      callId: `c${b.seq}`,
      number: '+15550001234',
      withheld: false,
      inHours: true,
      repeatCaller: false,
      waiting: false,
    },
  });
}

async function start(m: Start): Promise<void> {
  const gap = 1000 / m.connectPerSec;
  for (const [i, cred] of m.boxes.entries()) {
    const topics = deviceTopics(cred.deviceId);
    const client = mqtt.connect(m.url, {
      username: cred.deviceId,
      password: cred.password,
      clientId: cred.deviceId,
      keepalive: 120,
      reconnectPeriod: 2000,
      connectTimeout: 60_000,
      will: {
        topic: topics.status,
        payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', at: new Date().toISOString(), reason: 'will' })),
        qos: 1,
        retain: true,
      },
    });
    const b: Box = { id: cred.deviceId, client, topics, seq: m.seqBase, boot: newBootId() };
    client.on('connect', () => {
      b.up = true;
      client.publish(topics.status, JSON.stringify({ v: 1, state: 'online', at: new Date().toISOString() }), {
        qos: 1,
        retain: true,
      });
    });
    client.on('error', () => {
      failed++;
    });
    client.on('close', () => {
      if (b.up) drops++;
      b.up = false;
    });
    boxes.push(b);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, gap * 10));
  }
  // heartbeats: each box's telemetry, spread over the period
  const perTick = Math.max(1, Math.round((boxes.length / m.telemetryEveryS) * 0.1));
  let hb = 0;
  timers.push(
    setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const b = boxes[hb++ % boxes.length];
        if (b?.client.connected) b.client.publish(b.topics.telemetry, telemetry(b), { qos: 0 });
      }
    }, 100),
  );
  // events: the total rate spread over ticks of 50 ms, round robin
  const total = boxes.length * m.eventsPerBoxPerSec;
  let carry = 0;
  let next = 0;
  let last = Date.now();
  eventTimer = setInterval(() => {
    // By the time passed, not per tick: a loaded machine runs fewer ticks, the rate offered stays.
    const now = Date.now();
    carry += (total * (now - last)) / 1000;
    last = now;
    while (carry >= 1) {
      carry--;
      const b = boxes[next++ % boxes.length];
      if (!b?.client.connected) continue;
      b.client.publish(b.topics.events, event(b), { qos: 1 }, (err) => {
        if (err) nacked++;
        else acked++;
      });
      sent++;
    }
  }, 50);
  timers.push(eventTimer);
}

process.on('message', (m: Start | { t: 'stats' } | { t: 'pause' } | { t: 'stop' }) => {
  if (m.t === 'start') void start(m);
  else if (m.t === 'stats') {
    const connected = boxes.filter((b) => b.client.connected).length;
    process.send?.({ t: 'stats', connected, sent, acked, nacked, failed, drops });
  } else if (m.t === 'pause') {
    // No new events; what is in flight (mqtt.js resends unacknowledged QoS 1 after a reconnect) drains.
    clearInterval(eventTimer);
  } else if (m.t === 'stop') {
    for (const t of timers) clearInterval(t);
    for (const b of boxes) b.client.end(true);
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));
