/**
 * The boxes of bench/reconnect-storm.ts, in their own process so the
 * fleet's figures are the fleet's: each box is the real uplink (its own
 * SQLite store and Outbox, an MQTT Link with its own credentials).
 *
 * IPC in:  {t:'prepare', boxes, dir, events}  open every store and record `events` events offline
 *          {t:'go', url}                      start every link at once (the fleet is back)
 *          {t:'stats'}                        {t:'stats', online, depth, receipted, sentBatches, resends}
 *          {t:'stop'}
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { newBootId } from '../shared/ids.js';
import { setupLogging } from '../shared/log.js';

setupLogging({ level: 'error', format: 'json', destination: process.stderr });

interface Box {
  deviceId: string;
  password: string;
  store: Store;
  outbox: Outbox;
  link: Link | undefined;
}

const boxes: Box[] = [];
const send = (m: unknown) => process.send?.(m);

async function prepare(m: { boxes: { deviceId: string; password: string }[]; dir: string; events: number }) {
  for (let i = 0; i < m.boxes.length; i += 50) {
    await Promise.all(
      m.boxes.slice(i, i + 50).map(async (b) => {
        const dir = join(m.dir, b.deviceId);
        mkdirSync(dir, { recursive: true });
        const store = await Store.open({ file: join(dir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
        const outbox = new Outbox(store, {
          bootId: newBootId(),
          maxEvents: 100_000,
          publishBatch: 100,
          minFreeBytes: 1,
          dataDir: dir,
          receiptTimeoutMs: 30_000,
        });
        await outbox.open();
        await Promise.all(
          Array.from({ length: m.events }, (_, n) =>
            outbox.record('call.incoming', {
              callId: `${b.deviceId}-${n}`,
              number: '+15550001234',
              withheld: false,
              inHours: true,
              repeatCaller: false,
              waiting: false,
            }),
          ),
        );
        boxes.push({ ...b, store, outbox, link: undefined });
      }),
    );
  }
  send({ t: 'prepared', depth: boxes.reduce((n, b) => n + b.outbox.depth, 0) });
}

function go(url: string): void {
  for (const b of boxes) {
    const link = new Link({
      url,
      identity: { kind: 'device', id: b.deviceId, username: b.deviceId, password: b.password },
      keepaliveS: 60,
      connectTimeoutMs: 30_000,
      reconnectMinMs: 1000,
      reconnectMaxMs: 30_000,
      bootId: newBootId(),
      softwareVersion: 'bench',
    });
    wireOutbox(link, b.outbox, b.deviceId);
    link.start();
    b.link = link;
  }
}

function stats() {
  let depth = 0;
  let online = 0;
  let sentBatches = 0;
  let resends = 0;
  let drained = 0;
  for (const b of boxes) {
    depth += Math.max(0, b.outbox.depth);
    if (b.outbox.depth <= 0) drained++;
    if (b.link?.online) online++;
    sentBatches += b.outbox.delivery.sentBatches;
    resends += b.outbox.delivery.resends;
  }
  return { t: 'stats', online, depth, drained, sentBatches, resends };
}

process.on('message', (m: { t: string } & Record<string, unknown>) => {
  if (m.t === 'prepare') void prepare(m as never);
  else if (m.t === 'go') go(String(m.url));
  else if (m.t === 'stats') send(stats());
  else if (m.t === 'stop') {
    void Promise.all(boxes.map((b) => b.link?.kill()))
      .then(() => Promise.all(boxes.map((b) => b.outbox.close().then(() => b.store.close()))))
      .finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
