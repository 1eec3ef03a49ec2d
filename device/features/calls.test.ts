import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { ErrorCode } from '../../shared/errors.js';
import { FakeModem } from '../../test/helpers/fake-modem.js';
import type { Box } from '../box.js';
import { settingsFrom } from '../calls/settings.js';
import { MemoryEventSink } from '../events.js';
import { Store } from '../store/store.js';
import { CallsFeature } from './calls.js';
import type { ModemFeature } from './modem.js';

const dir = mkdtempSync(join(tmpdir(), 'callbox-calls-feature-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const allDay = [{ open: '00:00', close: '24:00' }];
const good = settingsFrom({
  hours: { weekly: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay } },
  rollover: { number: '+15550009999' },
});

/** A stand-in for the Box: the real store, an in-memory sink, settings with check/apply like the box's. */
async function host(file: string) {
  const modem = new FakeModem();
  // The production wiring (device/features/calls.ts); it uses only the modem of the modem feature.
  const calls = new CallsFeature({ modem } as unknown as ModemFeature, null);
  const store = await Store.open({ file, migrations: { calls: calls.migrations } });
  const sink = new MemoryEventSink();
  const handlers = new Map<string, (p: never, ctx: never) => unknown>();
  const listeners: {
    check?(n: DeviceSettings, p: DeviceSettings): void;
    apply(n: DeviceSettings, p: DeviceSettings): void;
  }[] = [];
  const h = {
    store,
    events: sink,
    settings: good,
    handle: (m: string, fn: (p: never, ctx: never) => unknown) => {
      handlers.set(m, fn);
      return () => handlers.delete(m);
    },
    onSettings: async (l: (typeof listeners)[number]) => {
      listeners.push(l);
      l.apply(h.settings, h.settings);
      return () => listeners.splice(listeners.indexOf(l), 1);
    },
    /** What the box does with new settings: every check, then every apply; a veto changes nothing. */
    async change(next: DeviceSettings) {
      for (const l of listeners) l.check?.(next, h.settings);
      const prev = h.settings;
      h.settings = next;
      for (const l of listeners) l.apply(next, prev);
    },
  };
  return { calls, modem, store, sink, handlers, h };
}

describe('the calls feature (device/features/calls.ts) on a stand-in box', () => {
  it('keeps call records in the box store, answers the forwarding commands and provisions forwarding', async () => {
    const { calls, modem, store, sink, handlers, h } = await host(join(dir, 'box1.db'));
    await calls.start(h as unknown as Box);
    expect([...handlers.keys()].sort()).toEqual(['forwarding.query', 'forwarding.set']);
    await calls.manager.idle();
    expect(sink.ofType('forwarding.state').map((s) => [s.reason, s.confirmed])).toEqual([
      ['busy', true],
      ['no_reply', true],
      ['not_reachable', true],
    ]);
    const idx = modem.incoming('+15551230001');
    await calls.manager.idle();
    const rows = await store.all<{ phase: string; number: string }>('SELECT phase, number FROM calls');
    expect(rows).toEqual([{ phase: 'ringing', number: '+15551230001' }]);
    modem.callerHangsUp(idx);
    await calls.manager.idle();
    expect(await store.all('SELECT phase, outcome FROM calls')).toEqual([{ phase: 'ended', outcome: 'abandoned' }]);
    await calls.stop();
    expect(handlers.size).toBe(0);
    await store.close();
  });

  it('refuses settings with impossible clinic hours (naming the field) and applies good ones', async () => {
    const { calls, modem, store, h } = await host(join(dir, 'box2.db'));
    await calls.start(h as unknown as Box);
    const bad = settingsFrom({ ...good, hours: { weekly: { mon: [{ open: '18:00', close: '09:00' }] } } });
    await expect(h.change(bad)).rejects.toMatchObject({
      code: ErrorCode.ValidationFailed,
      message: expect.stringContaining('/hours/weekly/mon/0: got 18:00-09:00'),
    });
    expect(h.settings).toBe(good);
    await h.change(settingsFrom({ ...good, rollover: { number: '+15550008888' } }));
    await calls.manager.idle();
    expect(modem.forwarding.get('busy')?.number).toBe('+15550008888');
    await calls.stop();
    await store.close();
  });
});
