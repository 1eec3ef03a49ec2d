import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { newBootId } from '../../shared/ids.js';
import { waitFor } from '../../shared/wait.js';
import { Store } from '../store/store.js';
import { UPLINK_MIGRATIONS } from './migrations.js';
import { Outbox, type Sender } from './outbox.js';

async function outbox(publishBatch = 10, over: Partial<ConstructorParameters<typeof Outbox>[1]> = {}) {
  const store = await Store.open({
    file: join(mkdtempSync(join(tmpdir(), 'callbox-ob-')), 'box.db'),
    migrations: { uplink: UPLINK_MIGRATIONS },
  });
  const ob = new Outbox(store, { bootId: newBootId(), maxEvents: 1000, publishBatch, minFreeBytes: 1, ...over });
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

/** A sender that records the batches published (PUBACK at once: it proves nothing). */
function sender(deviceId: string) {
  const sent: { last: number; batch: { stream: string; floor: number; after: number; events: { seq: number }[] } }[] =
    [];
  const s: Sender = {
    deviceId,
    send: async (payload, last) => {
      sent.push({ last, batch: JSON.parse(payload) });
    },
  };
  const seqs = () => sent.flatMap((b) => b.batch.events.map((e) => e.seq));
  return { s, sent, seqs };
}

describe('outbox pump: batches, receipts, resends', () => {
  it('sends batches of publishBatch events, at most batchesInFlight unreceipted, and deletes only on receipt', async () => {
    const { store, ob } = await outbox(10, { batchesInFlight: 2 });
    await Promise.all(Array.from({ length: 45 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a');
    ob.attach(a.s);
    await waitFor(() => a.sent.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.sent.length).toBe(2); // the broker took both (PUBACK): nothing more without a receipt
    expect(a.seqs()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.sent[0]?.batch).toMatchObject({ v: 1, deviceId: 'box-a', floor: 0, after: 0 });
    expect(a.sent[1]?.batch).toMatchObject({ floor: 0, after: 10 });
    expect(ob.depth).toBe(45);
    const stream = ob.delivery.stream;
    await ob.onReceipt({ stream, seq: 10 });
    expect(ob.depth).toBe(35);
    await waitFor(() => a.sent.length === 3);
    expect(a.sent[2]?.batch).toMatchObject({ floor: 10, after: 20 });
    // A receipt for another outbox (a store set aside) changes nothing.
    await ob.onReceipt({ stream: '00000000-0000-4000-8000-000000000000', seq: 45 });
    expect(ob.depth).toBe(35);
    await ob.onReceipt({ stream, seq: 30 });
    await waitFor(() => a.sent.length === 5);
    expect(a.seqs()).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    await ob.onReceipt({ stream, seq: 45 });
    await ob.drained();
    expect(ob.depth).toBe(0);
    await ob.close();
    await store.close();
  });

  it('events committed while a round starts are sent, never claimed as held by nobody', async () => {
    const { store, ob } = await outbox(10);
    // The first read of a round finds the outbox empty; an event commits before the pump goes on.
    const realGet = store.get.bind(store);
    let raced = false;
    store.get = (async (sql: string, params?: unknown[]) => {
      const r = await realGet(sql, params);
      if (!raced && sql.includes('MIN(seq)')) {
        raced = true;
        await ob.record('call.incoming', body(1));
      }
      return r;
    }) as typeof store.get;
    const a = sender('box-a');
    ob.attach(a.s);
    await waitFor(() => a.sent.length === 1);
    expect(raced).toBe(true);
    // The batch carries seq 1 and does not claim a floor above it.
    expect(a.sent[0]?.batch).toMatchObject({ floor: 0, after: 0 });
    expect(a.seqs()).toEqual([1]);
    await ob.close();
    await store.close();
  });

  it('a receipt that lands while a round reads its rows never makes a batch start at or below its own after', async () => {
    // Found by the SIGKILL fault injection on a loaded machine: a new round (reconnect) read rows from seq 1; a
    // receipt of the previous round arrived during the read and moved sentUpTo to 20; the batch then said
    // after: 20 while carrying seq 1..10, and the fleet refused it whole as invalid.
    const { store, ob } = await outbox(10, { batchesInFlight: 2 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a');
    ob.attach(a.s);
    await waitFor(() => a.sent.length === 2);
    ob.detach();
    const realAll = store.all.bind(store);
    let raced = false;
    store.all = (async (sql: string, params?: unknown[]) => {
      const r = await realAll(sql, params);
      if (!raced && sql.includes('FROM events WHERE seq >')) {
        raced = true;
        await ob.onReceipt({ stream: ob.delivery.stream, seq: 20 });
      }
      return r;
    }) as typeof store.all;
    const b = sender('box-a');
    ob.attach(b.s);
    await waitFor(() => b.seqs().includes(30), 'seq 30 sent');
    expect(raced).toBe(true);
    for (const { batch } of b.sent) {
      expect(batch.events[0]?.seq, `batch after ${batch.after}`).toBeGreaterThan(batch.after);
      expect(batch.floor).toBeLessThanOrEqual(batch.after);
    }
    expect(b.seqs()).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));
    await ob.close();
    await store.close();
  });

  it('bounds a batch in bytes too (one event at least)', async () => {
    const { store, ob } = await outbox(100, { batchMaxBytes: 4096 });
    await Promise.all(Array.from({ length: 60 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a');
    ob.attach(a.s);
    await waitFor(() => a.sent.length >= 3);
    for (const b of a.sent) expect(JSON.stringify(b.batch).length).toBeLessThanOrEqual(4096);
    expect(a.sent[0]?.batch.events.length).toBeGreaterThan(5);
    await ob.close();
    await store.close();
  });

  it('a link that comes back while the pump is reading still gets the whole backlog', async () => {
    const { store, ob } = await outbox(50);
    await Promise.all(Array.from({ length: 30 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a');
    const b = sender('box-a');
    ob.attach(a.s); // starts reading
    ob.detach(); // link lost before the read returns
    ob.attach(b.s); // and back: no new event will come to wake the pump
    await waitFor(() => b.seqs().length === 30);
    expect(b.seqs()).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await ob.onReceipt({ stream: ob.delivery.stream, seq: 30 });
    await ob.drained();
    expect(ob.depth).toBe(0);
    await ob.close();
    await store.close();
  });

  it('after a link loss, unreceipted events are sent again from the oldest', async () => {
    const { store, ob } = await outbox(2, { batchesInFlight: 3 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => ob.record('call.incoming', body(i))));
    const a = sender('box-a');
    ob.attach(a.s);
    await waitFor(() => a.sent.length === 3);
    await ob.onReceipt({ stream: ob.delivery.stream, seq: 2 });
    await waitFor(() => a.sent.length === 4);
    ob.detach();
    const b = sender('box-a');
    ob.attach(b.s);
    await waitFor(() => b.seqs().length === 6);
    expect(b.seqs()).toEqual([3, 4, 5, 6, 7, 8]);
    expect(b.sent[0]?.batch).toMatchObject({ floor: 2, after: 2 });
    await ob.close();
    await store.close();
  });

  it('no receipt within receiptTimeoutMs: everything unreceipted is sent again, waiting longer each time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { store, ob } = await outbox(10, { receiptTimeoutMs: 1000, receiptTimeoutMaxMs: 4000 });
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => {
          const p = ob.record('call.incoming', body(i));
          return p;
        }).map(async (p) => {
          await vi.advanceTimersByTimeAsync(5);
          return p;
        }),
      );
      const a = sender('box-a');
      ob.attach(a.s);
      await vi.waitUntil(() => a.sent.length === 1, { interval: 1 });
      await vi.advanceTimersByTimeAsync(999);
      expect(a.sent.length).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      await vi.waitUntil(() => a.sent.length === 2, { interval: 1 });
      expect(a.sent[1]?.batch.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      // Then 2 s, then 4 s (the cap), not a storm.
      await vi.advanceTimersByTimeAsync(1999);
      expect(a.sent.length).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      await vi.waitUntil(() => a.sent.length === 3, { interval: 1 });
      await vi.advanceTimersByTimeAsync(3999);
      expect(a.sent.length).toBe(3);
      await vi.advanceTimersByTimeAsync(1);
      await vi.waitUntil(() => a.sent.length === 4, { interval: 1 });
      expect(ob.delivery.resends).toBe(3);
      await ob.onReceipt({ stream: ob.delivery.stream, seq: 5 });
      expect(ob.depth).toBe(0);
      await ob.close();
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('outbox close', () => {
  it('waits on the commit in flight without polling, and commits what was handed in meanwhile', async () => {
    const { store, ob } = await outbox(10, { flushDelayMs: 0 });
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let entered = 0;
    const transaction = store.transaction.bind(store);
    const held = vi.spyOn(store, 'transaction').mockImplementation(async (fn) => {
      entered++;
      await gate;
      return transaction(fn);
    });
    const first = ob.record('call.incoming', body(1));
    await waitFor(() => entered === 1, 'the held commit entered');
    const timers = vi.spyOn(globalThis, 'setTimeout');
    let closed = false;
    const closing = ob.close().then(() => {
      closed = true;
    });
    const second = ob.record('call.incoming', body(2));
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    // The old close() polled every millisecond (a setTimeout per turn) while the commit was held.
    expect(timers).not.toHaveBeenCalled();
    timers.mockRestore();
    open();
    await closing;
    expect((await first).seq).toBe(1);
    expect((await second).seq).toBe(2);
    expect(ob.depth).toBe(2);
    await expect(ob.record('call.incoming', body(3))).rejects.toThrow(/shutting down/);
    held.mockRestore();
    await store.close();
  });
});
