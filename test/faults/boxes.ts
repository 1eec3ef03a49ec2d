/**
 * The boxes of the fault suite, in one process (forked with an IPC channel):
 * each box is the real uplink (its own SQLite store, Outbox and MQTT Link
 * with its own credentials, over TCP to the fleet's broker), producing
 * events at a steady rate: call.incoming mostly, and a panic.pressed now
 * and then. This process is never killed by the suite, so a record() that
 * resolved is a durable event, kept in the ledger sent back at the end.
 *
 * IPC in: {t:'start', url, boxes, dir, eventsPerS, panicEvery, seed}, {t:'stats'},
 *         {t:'stopProducing'}, {t:'drain', timeoutMs}, {t:'exit'}
 * IPC out: {t:'started'}, {t:'stats', ...}, {t:'drained', ledger, depth}
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../device/store/store.js';
import { Link } from '../../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../../device/uplink/migrations.js';
import { Outbox } from '../../device/uplink/outbox.js';
import { wireOutbox } from '../../device/uplink/wire.js';
import { newBootId, newRequestId } from '../../shared/ids.js';
import { setupLogging } from '../../shared/log.js';

setupLogging({ level: process.env.CALLBOX_LOG_LEVEL ?? 'error', format: 'json', destination: process.stderr });

export interface BoxStart {
  t: 'start';
  url: string;
  boxes: { deviceId: string; password: string }[];
  dir: string;
  /** Events per box per second. */
  eventsPerS: number;
  /** One event in this many is a panic press. */
  panicEvery: number;
  receiptTimeoutMs: number;
}

export interface LedgerEntry {
  id: string;
  seq: number;
  type: string;
}

export interface BoxStats {
  t: 'stats';
  recorded: number;
  refused: number;
  depth: number;
  receipted: number;
  sentBatches: number;
  resends: number;
  online: number;
}

interface Box {
  deviceId: string;
  store: Store;
  outbox: Outbox;
  link: Link;
  ledger: LedgerEntry[];
}

const boxes: Box[] = [];
let producing = false;
let refused = 0;
const send = (m: unknown) => process.send?.(m);

async function start(m: BoxStart): Promise<void> {
  for (const b of m.boxes) {
    const dir = join(m.dir, b.deviceId);
    mkdirSync(dir, { recursive: true });
    const bootId = newBootId();
    const store = await Store.open({ file: join(dir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
    const outbox = new Outbox(store, {
      bootId,
      maxEvents: 1_000_000,
      publishBatch: 100,
      minFreeBytes: 1,
      dataDir: dir,
      receiptTimeoutMs: m.receiptTimeoutMs,
      receiptTimeoutMaxMs: m.receiptTimeoutMs * 4,
    });
    await outbox.open();
    const link = new Link({
      url: m.url,
      identity: { kind: 'device', id: b.deviceId, username: b.deviceId, password: b.password },
      keepaliveS: 10,
      connectTimeoutMs: 3000,
      reconnectMinMs: 200,
      reconnectMaxMs: 2000,
      bootId,
      softwareVersion: 'faults',
    });
    wireOutbox(link, outbox, b.deviceId);
    link.start();
    boxes.push({ deviceId: b.deviceId, store, outbox, link, ledger: [] });
  }
  producing = true;
  const every = 1000 / m.eventsPerS;
  for (const box of boxes) void produce(box, every, m.panicEvery);
}

async function produce(box: Box, everyMs: number, panicEvery: number): Promise<void> {
  let n = 0;
  // Spread the boxes over the period.
  await new Promise((r) => setTimeout(r, Math.random() * everyMs));
  while (producing) {
    n++;
    try {
      const r =
        n % panicEvery === 0
          ? await box.outbox.record('panic.pressed', { panicId: newRequestId(), source: 'desk' })
          : await box.outbox.record('call.incoming', {
              callId: `${box.deviceId}-${n}`,
              number: null,
              withheld: true,
              inHours: true,
              repeatCaller: false,
              waiting: false,
            });
      box.ledger.push({ id: r.id, seq: r.seq, type: n % panicEvery === 0 ? 'panic.pressed' : 'call.incoming' });
    } catch {
      refused++;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function stats(): BoxStats {
  let recorded = 0;
  let depth = 0;
  let receipted = 0;
  let sentBatches = 0;
  let resends = 0;
  let online = 0;
  for (const b of boxes) {
    recorded += b.ledger.length;
    depth += Math.max(0, b.outbox.depth);
    const d = b.outbox.delivery;
    receipted += b.ledger.filter((e) => e.seq <= d.receipted).length;
    sentBatches += d.sentBatches;
    resends += d.resends;
    if (b.link.online) online++;
  }
  return { t: 'stats', recorded, refused, depth, receipted, sentBatches, resends, online };
}

async function drain(timeoutMs: number): Promise<void> {
  producing = false;
  const end = Date.now() + timeoutMs;
  await Promise.all(
    boxes.map((b) =>
      Promise.race([b.outbox.drained(), new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())))]),
    ),
  );
  const ledger: Record<string, LedgerEntry[]> = {};
  const receipted: Record<string, number> = {};
  for (const b of boxes) {
    ledger[b.deviceId] = b.ledger;
    receipted[b.deviceId] = b.outbox.delivery.receipted;
  }
  send({ t: 'drained', ledger, receipted, stats: stats() });
}

process.on('message', (m: { t: string } & Record<string, unknown>) => {
  if (m.t === 'start') {
    start(m as unknown as BoxStart).then(
      () => send({ t: 'started' }),
      (e) => send({ t: 'error', message: String(e) }),
    );
  } else if (m.t === 'stats') send(stats());
  else if (m.t === 'stopProducing') producing = false;
  else if (m.t === 'drain') void drain(Number(m.timeoutMs ?? 60_000));
  else if (m.t === 'exit') {
    void Promise.all(boxes.map((b) => b.link.kill()))
      .then(() => Promise.all(boxes.map((b) => b.outbox.close().then(() => b.store.close()))))
      .finally(() => process.exit(0));
  }
});
