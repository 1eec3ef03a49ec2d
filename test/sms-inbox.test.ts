/**
 * Received SMS from the SIM to the outbox (device/features/sms-inbox.ts), on
 * the real driver, the emulator on a pty and a real SQLite outbox: deleted
 * from the SIM only after the event is committed; read twice, kept once;
 * not committed, kept on the SIM.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventSink, RecordOptions } from '../device/events.js';
import { SmsInbox, smsEventId } from '../device/features/sms-inbox.js';
import { fails } from '../device/sim/modem/behaviors.js';
import { Store } from '../device/store/store.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import type { EventBody, EventType } from '../shared/contract/events.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { newBootId } from '../shared/ids.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { type Rig, rig } from './modem-helpers.js';

// The failures here are on purpose: their warnings stay out of the run's output.
setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const BOX = 'CB-TEST-0001';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup() {
  const r: Rig = await rig('generic');
  cleanups.push(() => r.stop());
  const store = await Store.open({
    file: join(mkdtempSync(join(tmpdir(), 'callbox-sms-')), 'box.db'),
    migrations: { uplink: UPLINK_MIGRATIONS },
  });
  const outbox = new Outbox(store, {
    bootId: newBootId(),
    maxEvents: 1000,
    publishBatch: 50,
    minFreeBytes: 1,
    freeBytes: async () => 10 ** 12,
  });
  await outbox.open();
  cleanups.push(async () => {
    await outbox.close();
    await store.close();
  });
  const rows = () => store.all<{ id: string; body: string }>("SELECT id, body FROM events WHERE type = 'sms.received'");
  return { r, store, outbox, rows };
}

/** A sink that holds each record() until released: the moment between "asked" and "committed". */
class GateSink implements EventSink {
  readonly asked: string[] = [];
  private release: (() => void)[] = [];
  constructor(private readonly inner: EventSink) {}
  record<K extends EventType>(type: K, body: EventBody<K>, at?: Date, opts?: RecordOptions) {
    this.asked.push(opts?.id ?? '');
    return new Promise<void>((res) => this.release.push(res)).then(() => this.inner.record(type, body, at, opts));
  }
  open(): void {
    for (const f of this.release.splice(0)) f();
  }
}

describe('received SMS into the outbox', () => {
  it('deletes the SMS from the SIM only after its event is committed, under an id made from the message', async () => {
    const { r, outbox, rows } = await setup();
    const gate = new GateSink(outbox);
    const inbox = new SmsInbox(r.modem, gate, true, BOX);
    inbox.start();
    cleanups.push(async () => inbox.stop());
    const index = r.emu.receiveSms('+15557654321', 'ACK 4821') as number;
    await r.emu.waitUntil(() => gate.asked.length === 1, 5000, 'record asked');
    // Asked, not committed: still on the SIM, and no AT+CMGD went out.
    expect(r.emu.smsStore.has(index)).toBe(true);
    expect(r.emu.commands.some((c) => c.startsWith('AT+CMGD'))).toBe(false);
    gate.open();
    await r.emu.waitUntil(() => r.emu.smsStore.size === 0, 5000, 'deleted after the commit');
    const stored = await rows();
    expect(stored).toHaveLength(1);
    expect(JSON.parse(stored[0]?.body ?? '{}')).toMatchObject({ from: '+15557654321', text: 'ACK 4821' });
    expect(stored[0]?.id).toBe(gate.asked[0]);
    expect(stored[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('an SMS read again (the box stopped after the commit, before AT+CMGD) is one event, not two', async () => {
    const { r, outbox, rows } = await setup();
    const noDelete = fails(/^AT\+CMGD/, 'ERROR'); // as if the box died before deleting it
    r.emu.prepend(noDelete);
    let inbox = new SmsInbox(r.modem, outbox, true, BOX);
    inbox.start();
    r.emu.receiveSms('+15557654321', 'Running late, sorry');
    await r.emu.waitUntil(() => r.emu.commands.some((c) => c.startsWith('AT+CMGD')), 5000, 'delete tried');
    expect(await rows()).toHaveLength(1);
    inbox.stop();
    await r.modem.stop();
    r.emu.removeBehavior(noDelete);
    // The next start lists the SIM, finds the same message, records it again: the outbox knows that id.
    inbox = new SmsInbox(r.modem, outbox, true, BOX);
    inbox.start();
    cleanups.push(async () => inbox.stop());
    await r.modem.start();
    await r.emu.waitUntil(() => r.emu.smsStore.size === 0, 5000, 'deleted after the second read');
    expect(inbox.stats.recorded).toBe(1);
    const stored = await rows();
    expect(stored).toHaveLength(1);
    expect(outbox.seq).toBe(1);
  });

  it('a full SIM: the network holds the rest and delivers each as a place frees; all are recorded once', async () => {
    const { r, outbox, rows } = await setup();
    r.emu.smsCapacity = 2;
    const texts = ['one', 'two', 'three', 'four', 'five'];
    for (const t of texts) r.emu.receiveSms('+15557654321', t);
    expect(r.emu.smsStore.size).toBe(2);
    expect(r.emu.smsAtNetwork).toHaveLength(3);
    const inbox = new SmsInbox(r.modem, outbox, true, BOX);
    inbox.start();
    cleanups.push(async () => inbox.stop());
    await r.modem.scanStoredSms();
    await r.emu.waitUntil(() => r.emu.smsStore.size === 0 && r.emu.smsAtNetwork.length === 0, 10_000, 'all delivered');
    await r.emu.waitUntil(() => inbox.stats.deleted === 5, 10_000, 'all deleted');
    expect((await rows()).map((x) => JSON.parse(x.body).text).sort()).toEqual([...texts].sort());
  });

  it('an SMS whose event cannot be committed stays on the SIM', async () => {
    const { r } = await setup();
    const refusing: EventSink = {
      record: () => Promise.reject(new CallboxError(ErrorCode.StoreFull, 'outbox full')),
    };
    const inbox = new SmsInbox(r.modem, refusing, true, BOX);
    inbox.start();
    cleanups.push(async () => inbox.stop());
    r.emu.receiveSms('+15557654321', 'Please call back');
    await r.emu.waitUntil(() => inbox.stats.failed === 1, 5000, 'record refused');
    expect(r.emu.smsStore.size).toBe(1);
    expect(r.emu.commands.some((c) => c.startsWith('AT+CMGD'))).toBe(false);
  });

  it('the event id is the same for the same stored message and differs for another', () => {
    const a = { key: 'a'.repeat(64), at: '2026-11-26T09:16:40.000Z' };
    expect(smsEventId(a, BOX)).toBe(smsEventId({ ...a }, BOX));
    expect(smsEventId(a, BOX)).not.toBe(smsEventId({ ...a, key: 'b'.repeat(64) }, BOX));
    expect(smsEventId(a, BOX)).not.toBe(smsEventId(a, 'CB-OTHER-0002')); // the same SMS on another box
    // Time first, like every other event id: sortable by the service centre time.
    expect(smsEventId(a, BOX).replace(/-/g, '').slice(0, 12)).toBe(Date.parse(a.at).toString(16).padStart(12, '0'));
    expect(smsEventId({ ...a, at: null }, BOX).startsWith('00000000-0000-7')).toBe(true);
  });
});

describe('outbox: a producer-named id', () => {
  it('recording an id that is still stored returns the stored event; twice in one batch is one event', async () => {
    const { outbox, store } = await setup();
    const id = smsEventId({ key: 'c'.repeat(64), at: '2026-11-26T09:16:40.000Z' }, BOX);
    const body = { from: '+15557654321', text: 'x', at: '2026-11-26T09:16:40.000Z' };
    const [a, b] = await Promise.all([
      outbox.record('sms.received', body, new Date(), { id }),
      outbox.record('sms.received', body, new Date(), { id }),
    ]);
    const c = await outbox.record('sms.received', body, new Date(), { id });
    expect(a).toEqual(b);
    expect(c).toEqual(a);
    const other = await outbox.record('sms.received', body);
    expect(other.seq).toBe(a.seq + 1);
    expect((await store.all('SELECT id FROM events')).length).toBe(2);
    const bad = await outbox.record('sms.received', body, new Date(), { id: 'not-a-uuid' }).catch((e) => e);
    expect(String(bad.message)).toMatch(/id "not-a-uuid" is not a UUID/);
  });
});
