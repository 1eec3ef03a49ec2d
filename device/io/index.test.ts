import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeviceSettingsSchema } from '../../shared/contract/settings.js';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { DeviceConfigSchema } from '../config.js';
import { MemoryEventSink } from '../events.js';
import type { ModemState, Registration } from '../modem/types.js';
import { VirtualIo } from '../sim/virtual-io/virtual-io.js';
import { IoService, phoneLineOf } from './index.js';
import type { PhoneLineState } from './indicators.js';
import { loadPinmap, parsePinmap } from './pinmap.js';

const pinmap = loadPinmap();
let io: IoService | null = null;
afterEach(async () => {
  vi.useRealTimers();
  await io?.stop();
  io = null;
});

async function start() {
  const cfg = Value.Cast(DeviceConfigSchema, Value.Default(DeviceConfigSchema, {})).io;
  cfg.board = 'virtual';
  const settings = Value.Cast(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, {}));
  const vio = new VirtualIo();
  const sink = new MemoryEventSink();
  io = new IoService({
    config: cfg,
    sink,
    settings: () => settings,
    boxName: 'CB-1',
    board: { virtualIo: vio },
    hidBackend: null,
  });
  await io.start();
  return { io, vio, sink, settings };
}

/** Button debounce (johnny-five's, then the service's debounceMs) and lamp tests are timers: fake time moves past them. */
const pass = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('IoService', () => {
  it('maps modem state and registration to the phone line shown', () => {
    const rows: [ModemState, Registration, PhoneLineState][] = [
      ['ready', 'home', 'ok'],
      ['ready', 'roaming', 'ok'],
      ['ready', 'searching', 'not_registered'],
      ['ready', 'denied', 'not_registered'],
      ['ready', 'emergency_only', 'no_signal'],
      ['initializing', 'unknown', 'starting'],
      ['sim_missing', 'unknown', 'sim_problem'],
      ['disconnected', 'home', 'modem_missing'],
    ];
    for (const [state, registration, line] of rows) expect(phoneLineOf(state, { registration })).toBe(line);
  });

  it('the wired hook switch answers a ringing call and hangs up an active one', async () => {
    const { io, vio } = await start();
    const req: string[] = [];
    io.on('answer', (s) => req.push(`answer:${s}`));
    io.on('hangup', (s) => req.push(`hangup:${s}`));
    const hook = pinmap.signals['button.hook'].gpio;
    vi.useFakeTimers();
    await pass(20);
    io.setCall('ringing');
    vio.press(hook, true); // lifted: closed to ground
    await pass(150);
    io.setCall('active');
    vio.press(hook, false);
    await pass(150);
    io.setCall('idle');
    vio.press(hook, true);
    await pass(150);
    expect(req).toEqual(['answer:hook', 'hangup:hook']);
  });

  it('shows state on the LEDs and runs the lamp test command', async () => {
    const { io, vio } = await start();
    const led = (s: 'led.status' | 'led.fault' | 'led.voicemail') => vio.level(pinmap.signals[s].gpio);
    io.setLink('online');
    io.setPhoneLine('ok');
    expect(led('led.status')).toBeGreaterThan(0);
    expect(led('led.voicemail')).toBe(0);
    const handlers = io.commandHandlers();
    vi.useFakeTimers();
    const res = await handlers['indicators.test']!({ durationMs: 150 }, { topic: 't', id: 'r1' });
    expect(res.tested).toEqual(['ring', 'missed', 'voicemail', 'status', 'fault', 'panic', 'buzzer']);
    expect(led('led.voicemail')).toBeGreaterThan(0);
    expect(io.outputs.buzzer.pattern).toBe('test');
    await pass(250);
    expect(led('led.voicemail')).toBe(0);
    expect(io.outputs.buzzer.pattern).toBe('silent');
  });

  it('rejects a malformed panic.ack with the field named, changing nothing', async () => {
    const { io } = await start();
    const handlers = io.commandHandlers();
    const bad = { panicId: 'not-a-uuid', by: 'ops' };
    let err: unknown;
    try {
      await handlers['panic.ack']!(bad, { topic: 't', id: 'r1' });
    } catch (e) {
      err = e;
    }
    expect(isCallboxError(err, ErrorCode.ValidationFailed)).toBe(true);
    expect((err as Error).message).toMatch(/command panic.ack is invalid: \/panicId/);
    expect(io.indicatorState.panic).toBe('idle');
  });
});

describe('pin map validation', () => {
  it('rejects a pin used twice, naming both signals', () => {
    const map = structuredClone(pinmap);
    map.signals['led.missed'].gpio = map.signals['led.ring'].gpio;
    expect(() => parsePinmap(map)).toThrow(
      /\/signals\/led\.missed\/gpio: got 17, expected a pin not already used by led\.ring/,
    );
  });
  it('rejects unknown fields and bad values with their path', () => {
    const map = structuredClone(pinmap) as unknown as { signals: Record<string, Record<string, unknown>> };
    map.signals['led.ring']!.colour = 'red';
    expect(() => parsePinmap(map)).toThrow(/\/signals\/led\.ring\/colour/);
    const map2 = structuredClone(pinmap) as unknown as { signals: Record<string, Record<string, unknown>> };
    map2.signals.buzzer!.gpio = 40;
    expect(() => parsePinmap(map2)).toThrow(/\/signals\/buzzer\/gpio: got 40/);
  });
  it('a missing pin map file is a clear error', () => {
    expect(() => loadPinmap('/nonexistent/pinmap.json')).toThrow(/pin map \/nonexistent\/pinmap.json cannot be read/);
  });
});
