/**
 * Property tests of call tracking (device/modem/call-tracker.ts): any
 * sequence of AT+CLCC lists, pushed call lines (+CLCC / +QIND "ccinfo",
 * ended ones included), RINGs and end lines gives consistent transitions:
 *   - a call is reported ended only while it is listed, and never twice
 *     (until it is listed again: indexes are reused);
 *   - every call comes into being through incoming (MT) or dialing (MO);
 *   - the tracker's list is always the latest truth, one line per call, and
 *     'calls' is emitted exactly when that list changes;
 *   - a ring that never became a listed call ends at most once.
 * A failure prints its seed; replay with CALLBOX_FC_SEED (test/helpers/property.ts).
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommandResult } from '../device/modem/at/channel.js';
import { type CallReconciliation, CallTracker, callKey, reconcileCalls } from '../device/modem/call-tracker.js';
import { modemConfig } from '../device/modem/config.js';
import type { ModemHost } from '../device/modem/host.js';
import { PROFILES } from '../device/modem/profiles.js';
import type { CallInfo, CallStat, ModemEventMap } from '../device/modem/types.js';
import { assertProperty } from './helpers/property.js';

const STATS: CallStat[] = ['active', 'held', 'dialing', 'alerting', 'incoming', 'waiting'];

const call: fc.Arbitrary<CallInfo> = fc.record({
  index: fc.integer({ min: 1, max: 4 }),
  direction: fc.constantFrom('mo' as const, 'mt' as const),
  stat: fc.constantFrom(...STATS),
  mode: fc.constant('voice' as const),
  multiparty: fc.boolean(),
  number: fc.constantFrom(null, '+15551234567', '+15557654321'),
  numberType: fc.constant(null),
});
/** One AT+CLCC answer (repeated indexes included: a confused modem must not confuse the tracker). */
const snapshot = fc.array(call, { maxLength: 4 });

type Step =
  | { kind: 'list'; calls: CallInfo[] }
  /** The same list again, or with one call's state changed (what a poll mostly sees). */
  | { kind: 'again'; stat: CallStat | null; at: number }
  | { kind: 'pushed'; call: CallInfo; ended: boolean }
  | { kind: 'ring' }
  | { kind: 'endLine' }
  | { kind: 'endAll' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: snapshot.map((calls) => ({ kind: 'list' as const, calls })) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.option(fc.constantFrom(...STATS), { nil: null }), fc.nat(3))
      .map(([stat, at]) => ({ kind: 'again' as const, stat, at })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(call, fc.boolean()).map(([c, ended]) => ({ kind: 'pushed' as const, call: c, ended })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'ring' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'endLine' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'endAll' as const }) },
);

/** A host whose AT+CLCC never answers: only the steps of the test say what the list is. */
function host(events: { name: keyof ModemEventMap; args: unknown[] }[]): ModemHost {
  return {
    config: modemConfig({ path: '/dev/fake' }),
    log: { warn: () => {}, info: () => {}, debug: () => {}, error: () => {} } as never,
    profile: () => PROFILES.generic,
    stopped: () => false,
    cmd: () => new Promise<CommandResult>(() => {}),
    emit: (name, ...args) => {
      events.push({ name, args });
    },
  };
}

/** One line per index, the first (27.007 7.18: <idx> names one call). */
function dedupe(list: readonly CallInfo[]): CallInfo[] {
  const seen = new Set<number>();
  return list.filter((c) => {
    if (seen.has(c.index)) return false;
    seen.add(c.index);
    return true;
  });
}

describe('CLCC reconciliation (properties)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reconcileCalls: each call appears once (via incoming or dialing), changes while listed, ends once', () => {
    assertProperty(
      fc.property(fc.array(snapshot, { maxLength: 25 }), (lists) => {
        let prev: CallInfo[] = [];
        /** Per call: the transitions seen since it last appeared. */
        const life = new Map<string, string[]>();
        for (const list of lists) {
          const r: CallReconciliation = reconcileCalls(prev, list);
          expect(r.calls).toEqual(dedupe(list));
          for (const { call: c, via } of r.appeared) {
            const k = callKey(c);
            const h = life.get(k);
            expect(h === undefined || h.at(-1) === 'ended', `${k} appeared twice`).toBe(true);
            expect(via).toBe(c.direction === 'mt' ? 'incoming' : 'dialing');
            life.set(k, [via]);
          }
          for (const { from, to } of r.changed) {
            expect(callKey(from)).toBe(callKey(to));
            const h = life.get(callKey(to));
            expect(h && h.at(-1) !== 'ended', `${callKey(to)} changed without having appeared`).toBe(true);
            h?.push('changed');
          }
          for (const c of r.ended) {
            const h = life.get(callKey(c));
            expect(h && h.at(-1) !== 'ended', `${callKey(c)} ended twice or without having appeared`).toBe(true);
            h?.push('ended');
          }
          // Every listed call is accounted for: appeared now, or alive from before.
          for (const c of r.calls) expect(life.get(callKey(c))?.at(-1)).not.toBe('ended');
          prev = r.calls;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('CallTracker: under any mix of lists, pushed lines, RINGs and end lines, no call ends twice or unlisted', () => {
    assertProperty(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const events: { name: keyof ModemEventMap; args: unknown[] }[] = [];
        const t = new CallTracker(host(events));
        /** The indexes listed in the last 'calls' event, and those already ended since. */
        let listed = new Set<number>();
        const ended = new Set<number>();
        let ringEnds = 0;
        let lastCalls: CallInfo[] = [];
        const check = () => {
          const before = lastCalls;
          const endedNow: CallInfo[] = [];
          for (const e of events.splice(0)) {
            if (e.name === 'calls') {
              const list = e.args[0] as CallInfo[];
              expect(list).not.toEqual(lastCalls); // emitted only on a change
              lastCalls = list;
              listed = new Set(list.map((c) => c.index));
              for (const c of list) ended.delete(c.index);
            } else if (e.name === 'callEnded') {
              const { index } = e.args[0] as { index: number | null };
              if (index === null) {
                ringEnds++;
                expect(ringEnds, 'a ring ended twice').toBe(1);
                continue;
              }
              expect(listed.has(index), `call ${index} ended but was not listed`).toBe(true);
              expect(ended.has(index), `call ${index} ended twice`).toBe(false);
              ended.add(index);
              const was = before.find((c) => c.index === index);
              if (was) endedNow.push(was);
            }
          }
          // A call reported ended is not still listed as the same call (same index and direction).
          for (const c of endedNow)
            expect(
              t.calls.some((n) => callKey(n) === callKey(c)),
              `${callKey(c)} ended yet still listed`,
            ).toBe(false);
        };
        for (const s of steps) {
          if (s.kind === 'list') {
            const kept = t.applySnapshot(s.calls);
            expect(kept).toEqual(dedupe(s.calls));
          } else if (s.kind === 'again') {
            const list = t.calls.map((c, i) => (s.stat !== null && i === s.at ? { ...c, stat: s.stat } : c));
            expect(t.applySnapshot(list)).toEqual(list);
          } else if (s.kind === 'pushed') t.handleUrc({ type: 'call', call: { ...s.call, ended: s.ended } });
          else if (s.kind === 'ring') {
            t.handleUrc({ type: 'ring', kind: 'RING' });
            ringEnds = 0;
          } else if (s.kind === 'endLine') t.handleUrc({ type: 'callEnd', reason: 'no_carrier', index: null });
          else t.endAll('disconnected');
          check();
          expect(t.calls).toEqual(lastCalls);
        }
        t.stop();
      }),
      { numRuns: 500 },
    );
  });
});
