import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newBootId } from '../../shared/ids.js';
import { Store } from '../store/store.js';
import { UPLINK_MIGRATIONS } from './migrations.js';
import { Outbox, type Sender } from './outbox.js';

async function outbox(publishBatch = 10) {
  const store = await Store.open({
    file: join(mkdtempSync(join(tmpdir(), 'callbox-ob-')), 'box.db'),
    migrations: { uplink: UPLINK_MIGRATIONS },
  });
  const ob = new Outbox(store, { bootId: newBootId(), maxEvents: 1000, publishBatch, minFreeBytes: 1 });
  await ob.open();
  return { store, ob };
}

const body = (n: number) => ({
  callId: `u${n}`,
  number: null,
  withheld: true,
  inHours: true,
  repeatCaller: false,
  waiting: false,
});

/** A sender that records payloads and acknowledges when told to. */
function sender(deviceId: string, autoAck: boolean) {
  const sent: { seq: number; payload: string; ack: () => void }[] = [];
  const s: Sender = {
    deviceId,
    send: (payload, seq) =>
      new Promise<void>((resolve) => {
        sent.push({ seq, payload, ack: resolve });
        if (autoAck) resolve();
      }),
  };
  return { s, sent };
}

async function until(pred: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('outbox pump', () => {
  it('keeps at most publishBatch in flight, in seq order, and waits for acknowledgements', async () => {
    const { store, ob } = await outbox(10);
    await Promise.all(Array.from({ length: 25 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a', false);
    ob.attach(a.s);
    await until(() => a.sent.length === 10);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sent.length).toBe(10);
    for (const x of a.sent.slice(0, 5)) x.ack();
    await until(() => a.sent.length === 15);
    expect(a.sent.map((x) => x.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const e = JSON.parse(a.sent[0]?.payload ?? '{}');
    expect(e).toMatchObject({ v: 1, deviceId: 'box-a', seq: 1, type: 'call.incoming', body: body(0) });
    await ob.close();
    await store.close();
  });

  it('a link that comes back while the pump is reading still gets the whole backlog', async () => {
    const { store, ob } = await outbox(50);
    await Promise.all(Array.from({ length: 30 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a', true);
    const b = sender('box-a', true);
    ob.attach(a.s); // starts reading
    ob.detach(); // link lost before the read returns
    ob.attach(b.s); // and back: no new event will come to wake the pump
    await until(() => b.sent.length === 30);
    expect(b.sent.map((x) => x.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await ob.drained();
    expect(ob.depth).toBe(0);
    await ob.close();
    await store.close();
  });

  it('after a link loss, unacknowledged events are sent again from the oldest', async () => {
    const { store, ob } = await outbox(5);
    await Promise.all(Array.from({ length: 8 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a', false);
    ob.attach(a.s);
    await until(() => a.sent.length === 5);
    a.sent[0]?.ack();
    a.sent[1]?.ack();
    await until(() => a.sent.length === 7);
    ob.detach();
    await new Promise((r) => setTimeout(r, 50)); // acknowledgements recorded
    const b = sender('box-a', true);
    ob.attach(b.s);
    await until(() => b.sent.length === 6);
    expect(b.sent.map((x) => x.seq)).toEqual([3, 4, 5, 6, 7, 8]);
    await ob.close();
    await store.close();
  });
});
