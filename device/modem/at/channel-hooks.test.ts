/**
 * A hook (the driver's URC handler, discard or timeout listener) that throws
 * never wedges the channel, and is never silent: each new kind of error is
 * logged at once with its stack, repeats are counted and summed up at most
 * once a minute per hook.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, isCallboxError } from '../../../shared/errors.js';
import { AtChannel, type ChannelHooks, Priority } from './channel.js';

function harness(hooks: Partial<ChannelHooks>) {
  const logged: { fields: Record<string, unknown>; msg: string }[] = [];
  const ch = new AtChannel(
    { onUrc: () => false, onDiscard: () => {}, onTimeout: () => {}, ...hooks },
    { quietMs: 100, timeoutMs: 1000 },
    { log: { error: ((fields: Record<string, unknown>, msg: string) => logged.push({ fields, msg })) as never } },
  );
  const written: string[] = [];
  ch.attach(async (d) => {
    written.push(d.toString());
  });
  const rx = (s: string) => ch.feed(Buffer.from(s));
  return { ch, logged, rx, written };
}

describe('AtChannel hook errors', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a URC handler that throws on every line: the command still completes; logged once, then summed once a minute', async () => {
    const h = harness({
      onUrc: (line) => {
        if (line.startsWith('+CMTI')) throw new TypeError('cannot read index');
        return false;
      },
    });
    const p = h.ch.run({ command: 'AT+CSQ', prefixes: ['+CSQ:'], timeoutMs: 1000, priority: Priority.Poll });
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 50; i++) h.rx('\r\n+CMTI: "SM",1\r\n');
    h.rx('\r\n+CSQ: 20,99\r\n\r\nOK\r\n');
    expect((await p).lines).toEqual(['+CSQ: 20,99']);
    expect(h.ch.stats.hookErrors).toBe(50);
    expect(h.logged).toHaveLength(1);
    expect(h.logged[0]?.fields).toMatchObject({ hook: 'onUrc', err: expect.stringContaining('cannot read index') });
    expect(String(h.logged[0]?.fields.stack)).toContain('TypeError');

    await vi.advanceTimersByTimeAsync(60_000);
    h.rx('\r\n+CMTI: "SM",1\r\n');
    expect(h.logged).toHaveLength(2);
    expect(h.logged[1]?.fields).toMatchObject({ hook: 'onUrc', count: 50 });
  });

  it('a new kind of error is logged at once, even right after another', async () => {
    let n = 0;
    const h = harness({
      onUrc: () => {
        n++;
        throw n === 1 ? new TypeError('first') : new RangeError('second');
      },
    });
    h.rx('\r\nRING\r\n\r\nRING\r\n\r\nRING\r\n');
    expect(h.logged.map((l) => l.fields.err)).toEqual([
      expect.stringContaining('first'),
      expect.stringContaining('second'),
    ]);
    expect(h.ch.stats.hookErrors).toBe(3);
  });

  it('a timeout listener and a discard listener that throw: the next command still runs', async () => {
    const h = harness({
      onTimeout: () => {
        throw new Error('timeout listener bug');
      },
      onDiscard: () => {
        throw new Error('discard listener bug');
      },
    });
    const p = h.ch.run({ command: 'AT', timeoutMs: 500, priority: Priority.Normal });
    const failed = p.catch((e) => e);
    await vi.advanceTimersByTimeAsync(600);
    expect(isCallboxError(await failed, ErrorCode.ModemTimeout)).toBe(true);
    h.rx('\r\nGARBAGE\r\n');
    await vi.advanceTimersByTimeAsync(2000); // the resync AT after the timeout gets no answer either
    const q = h.ch.run({ command: 'AT+CSQ', prefixes: ['+CSQ:'], timeoutMs: 1000, priority: Priority.Normal });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.written).toEqual(['AT\r', 'AT\r', 'AT+CSQ\r']);
    h.rx('\r\n+CSQ: 20,99\r\n\r\nOK\r\n');
    expect((await q).lines).toEqual(['+CSQ: 20,99']);
    expect(h.logged.map((l) => l.fields.hook)).toEqual(expect.arrayContaining(['onTimeout', 'onDiscard']));
  });

  it('a logger that throws too changes nothing', async () => {
    const ch = new AtChannel(
      {
        onUrc: () => {
          throw new Error('bug');
        },
        onDiscard: () => {},
        onTimeout: () => {},
      },
      { quietMs: 100, timeoutMs: 1000 },
      {
        log: {
          error: (() => {
            throw new Error('log sink gone');
          }) as never,
        },
      },
    );
    ch.attach(async () => {});
    expect(() => ch.feed(Buffer.from('\r\nRING\r\n'))).not.toThrow();
    expect(ch.stats.hookErrors).toBe(1);
  });
});
