import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { CallboxError, ErrorCode } from '../errors.js';
import { problemsOf, validate } from '../validate.js';
import { EVENT_SCHEMAS, EVENT_TYPES } from './events.js';
import { EVENT_EXAMPLES, eventExample, MESSAGE_EXAMPLES } from './examples.js';
import { decodeEvent } from './messages.js';
import { DEVICE_COMMANDS, FLEET_REQUESTS } from './rpc.js';
import { DeviceSettingsSchema } from './settings.js';

function mutate(value: unknown, path: string[], to: unknown): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
  const last = path[path.length - 1] as string;
  if (to === undefined) delete node[last];
  else node[last] = to;
  return copy;
}

describe('event schemas', () => {
  it('has an example for every event type', () => {
    expect(Object.keys(EVENT_EXAMPLES).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it.each(EVENT_TYPES)('%s accepts its documented example', (type) => {
    const e = eventExample(type);
    expect(problemsOf(EVENT_SCHEMAS[type], e)).toEqual([]);
    expect(decodeEvent(JSON.stringify(e)).type).toBe(type);
  });

  it.each(EVENT_TYPES)('%s rejects a missing id, a bad seq, an unknown field and a wrong body', (type) => {
    const e = eventExample(type);
    const cases: [unknown, string][] = [
      [mutate(e, ['id'], undefined), '/id'],
      [mutate(e, ['seq'], 0), '/seq'],
      [mutate(e, ['seq'], 'one'), '/seq'],
      [mutate(e, ['at'], 'yesterday'), '/at'],
      [mutate(e, ['deviceId'], 'Box A'), '/deviceId'],
      [mutate(e, ['surprise'], true), '/surprise'],
      [mutate(e, ['body', 'surprise'], true), '/body/surprise'],
      [mutate(e, ['v'], 2), '/v'],
    ];
    for (const [bad, path] of cases) {
      expect(() => decodeEvent(JSON.stringify(bad))).toThrow(path);
    }
  });

  it('names the field of the right event type, not every union member', () => {
    const bad = mutate(eventExample('call.incoming'), ['body', 'number'], 42);
    expect(() => decodeEvent(JSON.stringify(bad))).toThrow(/event call\.incoming is invalid: \/body\/number: got 42/);
  });

  it('rejects an unknown event type and non-JSON with clear errors', () => {
    expect(() => decodeEvent(JSON.stringify({ ...eventExample('panic.pressed'), type: 'panic.exploded' }))).toThrow(
      /\/type: got "panic.exploded", expected one of/,
    );
    expect(() => decodeEvent('{not json')).toThrow(/not valid JSON/);
  });

  it('accepts a withheld caller as null and rejects letters in a caller id', () => {
    const withheld = mutate(eventExample('call.incoming'), ['body', 'number'], null);
    expect(() => decodeEvent(JSON.stringify(withheld))).not.toThrow();
    const letters = mutate(eventExample('call.incoming'), ['body', 'number'], 'ANONYMOUS');
    expect(() => decodeEvent(JSON.stringify(letters))).toThrow('/body/number');
  });
});

describe('message schemas', () => {
  it.each(MESSAGE_EXAMPLES.map((m) => [m.name, m] as const))('%s accepts its documented example', (_n, m) => {
    expect(problemsOf(m.schema, m.example)).toEqual([]);
  });

  it.each(MESSAGE_EXAMPLES.map((m) => [m.name, m] as const))('%s rejects an unknown field and a missing v', (_n, m) => {
    expect(problemsOf(m.schema, { ...(m.example as object), surplus: 1 }).length).toBeGreaterThan(0);
    expect(problemsOf(m.schema, mutate(m.example, ['v'], undefined)).length).toBeGreaterThan(0);
  });

  it('telemetry rejects a signal of +5 dBm and a negative outbox depth', () => {
    const t = MESSAGE_EXAMPLES.find((m) => m.name === 'Telemetry')!;
    expect(problemsOf(t.schema, mutate(t.example, ['modem', 'signalDbm'], 5)).map((p) => p.path)).toContain(
      '/modem/signalDbm',
    );
    expect(problemsOf(t.schema, mutate(t.example, ['outboxDepth'], -1)).map((p) => p.path)).toContain('/outboxDepth');
  });
});

describe('method tables', () => {
  const tables = { ...DEVICE_COMMANDS, ...FLEET_REQUESTS };
  it.each(Object.entries(tables))('%s: example params and result pass their schemas', (_name, spec) => {
    expect(problemsOf(spec.params, spec.example.params)).toEqual([]);
    expect(problemsOf(spec.result, spec.example.result)).toEqual([]);
  });

  it.each(Object.entries(DEVICE_COMMANDS))('%s: rejects unknown extra params (typos must not pass)', (_name, spec) => {
    const problems = problemsOf(spec.params, { ...(spec.example.params as object), enabeld: true });
    expect(problems.map((p) => p.path)).toContain('/enabeld');
    expect(problems[0]?.expected).toMatch(/unknown field/);
  });

  it('forwarding.set names a malformed number with what is accepted', () => {
    expect(() =>
      validate(
        DEVICE_COMMANDS['forwarding.set'].params,
        { enabled: true, number: '0800 FLOWERS' },
        'command forwarding.set',
      ),
    ).toThrow(/command forwarding\.set is invalid: \/number: got "0800 FLOWERS", expected string matching/);
  });
});

describe('device settings', () => {
  const defaults = Value.Default(DeviceSettingsSchema, {}) as Record<string, unknown>;

  it('an empty document gets complete, valid defaults', () => {
    expect(problemsOf(DeviceSettingsSchema, defaults)).toEqual([]);
  });

  it.each([
    [['calls', 'ringTimeoutS'], -1, /\/calls\/ringTimeoutS: got -1, expected integer >= 5, <= 300/],
    [['rollover', 'number'], '555-1234', /\/rollover\/number: got "555-1234", expected string matching .* or null/],
    [
      ['clinic', 'timezone'],
      'Mars/Olympus_Mons',
      /\/clinic\/timezone: got "Mars\/Olympus_Mons", expected string format iana-timezone/,
    ],
    [['calls', 'ringTimeoutSecs'], 20, /\/calls\/ringTimeoutSecs: got 20, expected no such field/],
    [['calls', 'inHours'], 'ring-forever', /\/calls\/inHours: got "ring-forever", expected .*one of/],
    [['hours', 'weekly', 'mon'], [{ open: '8am', close: '17:00' }], /\/hours\/weekly\/mon\/0\/open: got "8am"/],
  ])('rejects %j = %j with a message naming field, value and what is allowed', (path, value, message) => {
    const bad = mutate(defaults, path as string[], value);
    let err: unknown;
    try {
      validate(DeviceSettingsSchema, bad, 'settings');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CallboxError);
    expect((err as CallboxError).code).toBe(ErrorCode.ValidationFailed);
    expect((err as Error).message).toMatch(message);
  });
});
