import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../store/store.js';
import { CALLS_MIGRATIONS, type CallRecord, type CallStore, MemoryCallStore, SqliteCallStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'callbox-calls-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rec(over: Partial<CallRecord>): CallRecord {
  return {
    callId: 'c1',
    index: 1,
    number: '+15551230001',
    withheld: false,
    phase: 'ringing',
    startedAt: 1000,
    rings: 1,
    inHours: true,
    repeatCaller: false,
    waiting: false,
    answeredAt: null,
    answeredBy: null,
    rolledOverTo: null,
    rolledOverHow: null,
    outcome: null,
    endedAt: null,
    ...over,
  };
}

const impls: [string, () => Promise<CallStore>][] = [
  ['memory', async () => new MemoryCallStore()],
  ['sqlite file', () => SqliteCallStore.open(join(dir, `s-${Math.random()}.sqlite`))],
  [
    'box store (device/store)',
    async () => {
      const store = await Store.open({
        file: join(dir, `b-${Math.random()}.db`),
        migrations: { calls: CALLS_MIGRATIONS },
      });
      return new SqliteCallStore(store, () => store.close());
    },
  ],
];

describe.each(impls)('CallStore conformance: %s', (_name, make) => {
  it('saves, replaces and lists open calls oldest first', async () => {
    const s = await make();
    await s.save(rec({ callId: 'b', startedAt: 2000 }));
    await s.save(rec({ callId: 'a', startedAt: 1000, number: null, withheld: true }));
    await s.save(rec({ callId: 'e', phase: 'ended', outcome: 'missed', endedAt: 5000 }));
    expect((await s.openCalls()).map((c) => c.callId)).toEqual(['a', 'b']);
    await s.save(rec({ callId: 'b', startedAt: 2000, phase: 'answered', answeredAt: 2500, answeredBy: 'handset' }));
    expect(await s.get('b')).toEqual(
      rec({ callId: 'b', startedAt: 2000, phase: 'answered', answeredAt: 2500, answeredBy: 'handset' }),
    );
    expect(await s.get('a')).toMatchObject({ number: null, withheld: true });
    expect(await s.get('zzz')).toBeNull();
    await s.close();
  });

  it('counts earlier calls from a number within a window', async () => {
    const s = await make();
    await s.save(rec({ callId: 'x1', startedAt: 1000, phase: 'ended' }));
    await s.save(rec({ callId: 'x2', startedAt: 5000, phase: 'ended' }));
    await s.save(rec({ callId: 'x3', startedAt: 9000 }));
    await s.save(rec({ callId: 'y', number: '+15559990000', startedAt: 9000 }));
    expect(await s.countCallsFrom('+15551230001', 4000, 'x3')).toBe(1);
    expect(await s.countCallsFrom('+15551230001', 0, 'x3')).toBe(2);
    expect(await s.countCallsFrom('+15550000000', 0, 'x3')).toBe(0);
    await s.close();
  });

  it('claims a follow-up at most once per window and can release a claim', async () => {
    const s = await make();
    expect(await s.claimFollowUp('+15551230001', 1000, 0, 'c1')).toBe(true);
    expect(await s.claimFollowUp('+15551230001', 2000, 500, 'c2')).toBe(false);
    expect(await s.lastFollowUp('+15551230001')).toBe(1000);
    // window passed: the claim may be taken again
    expect(await s.claimFollowUp('+15551230001', 9000, 1001, 'c3')).toBe(true);
    expect(await s.lastFollowUp('+15551230001')).toBe(9000);
    await s.releaseFollowUp('+15551230001', 9000);
    expect(await s.lastFollowUp('+15551230001')).toBeNull();
    expect(await s.claimFollowUp('+15551230001', 9500, 1001, 'c4')).toBe(true);
    await s.close();
  });

  it('prunes ended calls and follow-ups older than a time, never open calls', async () => {
    const s = await make();
    await s.save(rec({ callId: 'old', startedAt: 100, phase: 'ended' }));
    await s.save(rec({ callId: 'open-old', startedAt: 100 }));
    await s.save(rec({ callId: 'new', startedAt: 10_000, phase: 'ended' }));
    await s.claimFollowUp('+15551230001', 100, 0, 'old');
    expect(await s.prune(5000)).toBe(1);
    expect(await s.get('old')).toBeNull();
    expect(await s.get('open-old')).not.toBeNull();
    expect(await s.get('new')).not.toBeNull();
    expect(await s.lastFollowUp('+15551230001')).toBeNull();
    await s.close();
  });
});

describe('SqliteCallStore', () => {
  it('keeps records across close and reopen', async () => {
    const file = join(dir, 'reopen.sqlite');
    const a = await SqliteCallStore.open(file);
    await a.save(rec({ callId: 'keep' }));
    await a.close();
    const b = await SqliteCallStore.open(file);
    expect((await b.openCalls()).map((c) => c.callId)).toEqual(['keep']);
    await b.close();
  });

  it('fails with a clear storage error when the file cannot be opened', async () => {
    await expect(SqliteCallStore.open(join(dir, 'no', 'such', 'dir', 'x.sqlite'))).rejects.toMatchObject({
      code: 400,
      message: expect.stringContaining('call store: opening'),
    });
  });
});
