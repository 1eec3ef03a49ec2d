import { describe, expect, it } from 'vitest';
import { getLogger, levelFor, MemoryLogStream, maskInText, maskNumber, parseLevelSpec, setupLogging } from './log.js';

describe('phone number masking in logs', () => {
  it('keeps the last four digits', () => {
    expect(maskNumber('+15551234567')).toBe('+*******4567');
    expect(maskNumber('07700900123')).toBe('*******0123');
    expect(maskNumber('123')).toBe('***');
  });

  it('masks numbers inside free text but leaves long ids and times alone', () => {
    expect(maskInText('call from +15551234567 rolled over')).toBe('call from +*******4567 rolled over');
    expect(maskInText('dial (555) 123-4567 now')).toContain('4567');
    expect(maskInText('dial (555) 123-4567 now')).not.toContain('123-4567');
    expect(maskInText('IMEI 351234567890123456 ok')).toContain('351234567890123456');
    expect(maskInText('took 1500 ms')).toBe('took 1500 ms');
    const uuid = 'voicemail 01a2190f-a271-7c55-9821-735123456789 stored';
    expect(maskInText(uuid)).toBe(uuid);
  });

  it('masks numbers of every shape the scanner knows: glued to letters, international, side by side', () => {
    expect(maskInText('x+15553330001')).toBe('x+*******0001');
    expect(maskInText('+15553330002abc')).toBe('+*******0002abc');
    expect(maskInText('calls 07700900123 07700900124 today')).toBe('calls *******0123 *******0124 today');
    expect(maskInText('from +44 7700 900123, ok')).toBe('from +********0123, ok');
    expect(maskInText('at "2026-12-02T00:12:31.397Z"')).toBe('at "2026-12-02T00:12:31.397Z"');
    expect(maskInText('id abc1234567')).toBe('id abc1234567');
  });

  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
  it.each(levels)('masks numbers at level %s in the message and in nested fields', (level) => {
    const dest = new MemoryLogStream();
    setupLogging({ level: 'trace', destination: dest });
    const log = getLogger('device:calls');
    log[level](
      {
        call: { number: '+15551234567', history: [{ caller: '+442071234567' }] },
        to: '07700900123',
        note: 'from +15559876543',
      },
      'incoming call from +15551234567',
    );
    const text = dest.text();
    for (const raw of ['15551234567', '442071234567', '07700900123', '15559876543']) expect(text).not.toContain(raw);
    const line = dest.lines[0] as {
      msg: string;
      ns: string;
      level: string;
      to: string;
      call: { number: string; history: { caller: string }[] };
    };
    expect(line.msg).toBe('incoming call from +*******4567');
    expect(line.call.number).toBe('+*******4567');
    expect(line.call.history[0]?.caller).toBe('+********4567');
    expect(line.to).toBe('*******0123');
    expect(line.ns).toBe('device:calls');
    expect(line.level).toBe(level);
  });

  it('masks numbers in logged errors', () => {
    const dest = new MemoryLogStream();
    setupLogging({ level: 'info', destination: dest });
    getLogger('device:modem').error({ err: new Error('AT+CTFR="+15551234567" failed') }, 'deflect failed');
    expect(dest.text()).not.toContain('15551234567');
    expect(dest.text()).toContain('4567');
  });
});

describe('levels per namespace', () => {
  it('parses a default and per-namespace overrides, longest prefix first', () => {
    const spec = parseLevelSpec('warn,device:modem=debug,device:modem:at=trace');
    expect(spec.base).toBe('warn');
    expect(spec.rules[0]).toEqual({ prefix: 'device:modem:at', level: 'trace' });
    expect(() => parseLevelSpec('loud')).toThrow(/not one of/);
  });

  it('applies the override to the namespace and its children only', () => {
    const dest = new MemoryLogStream();
    setupLogging({ level: 'warn,device:modem=debug', destination: dest });
    expect(levelFor('device:modem:at')).toBe('debug');
    expect(levelFor('device:modemx')).toBe('warn');
    getLogger('device:modem:at').debug('visible');
    getLogger('fleet:alerts').info('hidden');
    expect(dest.lines.map((l) => l.msg)).toEqual(['visible']);
  });
});

describe('masking leaves network addresses whole', () => {
  it.each([
    [
      'cannot connect to mqtt://192.168.1.50:1883: ECONNREFUSED',
      'cannot connect to mqtt://192.168.1.50:1883: ECONNREFUSED',
    ],
    ['connect ECONNREFUSED 192.168.1.50:1883', 'connect ECONNREFUSED 192.168.1.50:1883'],
    ['mqtts://[fe80::1]:8883 down', 'mqtts://[fe80::1]:8883 down'],
    ['ws://broker.local:9001/mqtt', 'ws://broker.local:9001/mqtt'],
  ])('%s', (text, want) => {
    expect(maskInText(text)).toBe(want);
  });
  it('still masks numbers beside addresses and in a URL query', () => {
    expect(maskInText('call from +15551234567 via 10.0.0.1')).toBe('call from +*******4567 via 10.0.0.1');
    expect(maskInText('https://hooks.example.com/x?from=+15551234567')).toBe(
      'https://hooks.example.com/x?from=+*******4567',
    );
    expect(maskInText('mqtt://10.0.0.2:1883 07700900123')).toBe('mqtt://10.0.0.2:1883 *******0123');
  });
});
