/**
 * Pending conditions change from the bus (a box back online), from the
 * sweep (reload from the store, raise what is due) and from other fleet
 * workers through the store. These tests hold one store call open at a
 * time to put the others in the order that once left an alert open.
 */
import { describe, expect, it } from 'vitest';
import { getLogger } from '../../shared/log.js';
import { PendingConditions, type PendingConditionsDeps } from './conditions.js';
import type { PendingCondition } from './types.js';

interface Gate {
  wait: () => Promise<void>;
  open: () => void;
  reached: Promise<void>;
}

/** A store call that stops until the test opens it (and tells when it was reached). */
function gate(): Gate {
  let open!: () => void;
  let reachedNow!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  const reached = new Promise<void>((r) => {
    reachedNow = r;
  });
  return {
    wait: () => {
      reachedNow();
      return opened;
    },
    open,
    reached,
  };
}

/** Let every queued continuation run (the store stand-ins answer without I/O). */
const drain = () => new Promise<void>((r) => setImmediate(r));

const OFFLINE: PendingCondition = {
  key: 'offline:box-1',
  clinicId: 'clinic-1',
  condition: 'box_offline',
  deviceId: 'box-1',
  since: '2026-12-01T10:00:00.000Z',
  meta: { graceMs: 300_000, duringHours: true },
};

function rig() {
  const stored = new Map<string, PendingCondition>();
  const active = new Map<string, string>(); // clinic|condition -> alert id
  const resolved: string[] = [];
  const gates: { deletePending?: Gate; raise?: Gate } = {};
  const deps = {
    store: {},
    alerts: {
      putPending: async (p: PendingCondition) => {
        stored.set(p.key, p);
      },
      deletePending: async (key: string) => {
        await gates.deletePending?.wait();
        return stored.delete(key);
      },
      listPending: async () => [...stored.values()],
      getActive: async (clinicId: string, condition: string) => {
        const id = active.get(`${clinicId}|${condition}`);
        return id ? { id } : undefined;
      },
    },
    directory: {
      isOpen: async () => true,
      settingsOf: async () => ({ rules: { boxOffline: { severity: 'critical', afterMin: 5 } } }),
      clinicName: async () => 'Clinic One',
      localTime: async () => '10:00',
      online: () => false,
    },
    lifecycle: {
      raise: async (clinicId: string, condition: string) => {
        await gates.raise?.wait();
        active.set(`${clinicId}|${condition}`, 'alert-1');
        return { alert: { id: 'alert-1' }, created: true };
      },
      resolve: async (id: string) => {
        for (const [k, v] of active) if (v === id) active.delete(k);
        resolved.push(id);
      },
      kick: async () => undefined,
    },
    config: { configDriftS: 600 },
    clock: { now: () => Date.parse('2026-12-01T10:10:00.000Z') },
    log: getLogger('test'),
  } as unknown as PendingConditionsDeps;
  return { pending: new PendingConditions(deps), stored, active, resolved, gates };
}

describe('PendingConditions', () => {
  it('a reload that reads the store while a clear is deleting does not bring the condition back', async () => {
    const r = rig();
    await r.pending.set(OFFLINE);
    r.active.set('clinic-1|box_offline', 'alert-1');
    r.gates.deletePending = gate();
    const clearing = r.pending.clear(OFFLINE.key, 'the box is back online');
    await r.gates.deletePending.reached; // the clear is deleting; the store still holds the row
    const loading = r.pending.load();
    r.gates.deletePending.open();
    await Promise.all([clearing, loading]);
    expect(r.resolved).toEqual(['alert-1']);
    expect(r.pending.has(OFFLINE.key)).toBe(false);
    expect(r.stored.has(OFFLINE.key)).toBe(false);
  });

  it('a box back online while the sweep raises its offline alert resolves that alert', async () => {
    const r = rig();
    await r.pending.set(OFFLINE);
    r.gates.raise = gate();
    const sweeping = r.pending.raiseDue(Date.parse('2026-12-01T10:10:00.000Z'));
    await r.gates.raise.reached; // the sweep is raising the alert
    const clearing = r.pending.clear(OFFLINE.key, 'the box is back online');
    await drain(); // whatever the clear can do before the raise ends, it has done
    r.gates.raise.open();
    await Promise.all([sweeping, clearing]);
    expect(r.resolved).toEqual(['alert-1']);
    expect(r.active.size).toBe(0);
    expect(r.stored.has(OFFLINE.key)).toBe(false);
  });
});
