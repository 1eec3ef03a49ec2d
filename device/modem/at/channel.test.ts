import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, isCallboxError } from '../../../shared/errors.js';
import { AtChannel, Priority } from './channel.js';
import { matchUrc, type Urc } from './urc.js';

function harness() {
  const written: string[] = [];
  const urcs: Urc[] = [];
  const discarded: string[] = [];
  const timeouts: [string, number][] = [];
  const ch = new AtChannel(
    {
      onUrc: (line) => {
        const u = matchUrc(line);
        if (u) urcs.push(u);
        return u !== null;
      },
      onDiscard: (t) => discarded.push(t),
      onTimeout: (c, n) => timeouts.push([c, n]),
    },
    { quietMs: 100, timeoutMs: 1000 },
  );
  ch.attach(async (d) => {
    written.push(d.toString());
  });
  const rx = (s: string) => ch.feed(Buffer.from(s));
  return { ch, written, urcs, discarded, timeouts, rx };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('AtChannel', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('claims reply lines by prefix; a RING and +CLIP inside an AT+CSQ reply are call events', async () => {
    const h = harness();
    const p = h.ch.run({ command: 'AT+CSQ', prefixes: ['+CSQ:'], timeoutMs: 1000, priority: Priority.Poll });
    await flush();
    expect(h.written).toEqual(['AT+CSQ\r']);
    h.rx('AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nRING\r\n\r\n+CLIP: "+15551234567",145,,,,0\r\n\r\nOK\r\n');
    const r = await p;
    expect(r.lines).toEqual(['+CSQ: 17,99']);
    expect(h.urcs.map((u) => u.type)).toEqual(['ring', 'clip']);
    expect(h.urcs[1]).toMatchObject({ caller: { number: '+15551234567' } });
  });

  it('treats RING before the reply line and NO CARRIER inside a reply as URCs', async () => {
    const h = harness();
    const p = h.ch.run({ command: 'AT+CLCC', prefixes: ['+CLCC:'], timeoutMs: 1000, priority: Priority.CallControl });
    await flush();
    h.rx('\r\nRING\r\n\r\nNO CARRIER\r\n\r\n+CLCC: 1,1,4,0,0,"+15551234567",145\r\n\r\nOK\r\n');
    expect((await p).lines).toHaveLength(1);
    expect(h.urcs.map((u) => u.type)).toEqual(['ring', 'callEnd']);
  });

  it('lets ATA take NO CARRIER as its final result', async () => {
    const h = harness();
    const p = h.ch.run({ command: 'ATA', callFinals: true, timeoutMs: 1000, priority: Priority.CallControl });
    await flush();
    h.rx('\r\nNO CARRIER\r\n');
    const err = await p.catch((e) => e);
    expect(isCallboxError(err, ErrorCode.ModemCommandFailed)).toBe(true);
    expect(err.details).toMatchObject({ command: 'ATA', final: 'no_carrier' });
    expect(h.urcs).toHaveLength(0);
  });

  it('reports +CME ERROR with code and text', async () => {
    const h = harness();
    const p = h.ch.run({ command: 'AT+CPIN?', prefixes: ['+CPIN:'], timeoutMs: 1000, priority: Priority.Normal });
    await flush();
    h.rx('\r\n+CME ERROR: SIM not inserted\r\n');
    const err = await p.catch((e) => e);
    expect(err.message).toBe('AT+CPIN? failed: +CME ERROR: SIM not inserted');
    expect(err.details).toMatchObject({ final: 'cme', code: 10 });
  });

  it('runs one command at a time, call control before SMS before polling', async () => {
    const h = harness();
    const order: string[] = [];
    const run = (command: string, priority: Priority) =>
      h.ch.run({ command, timeoutMs: 1000, priority }).then(() => order.push(command));
    const all = [
      run('AT+CSQ', Priority.Poll),
      run('AT+CREG?', Priority.Poll),
      run('AT+CMGS', Priority.Sms),
      run('ATA', Priority.CallControl),
      run('AT+CCFC=0,2', Priority.Normal),
    ];
    for (let i = 0; i < 5; i++) {
      await flush();
      expect(h.written).toHaveLength(i + 1); // never two in flight
      h.rx('\r\nOK\r\n');
    }
    await Promise.all(all);
    // The first was already on the line; the rest by priority, FIFO within a level.
    expect(order).toEqual(['AT+CSQ', 'ATA', 'AT+CMGS', 'AT+CCFC=0,2', 'AT+CREG?']);
  });

  it('times out naming the command and the caller, after the write, then resyncs and goes on', async () => {
    const h = harness();
    async function askSignal() {
      return h.ch.run({ command: 'AT+CSQ', prefixes: ['+CSQ:'], timeoutMs: 2000, priority: Priority.Poll });
    }
    const p = askSignal().catch((e) => e);
    const next = h.ch.run({ command: 'AT+CREG?', prefixes: ['+CREG:'], timeoutMs: 2000, priority: Priority.Poll });
    await vi.advanceTimersByTimeAsync(1999);
    expect(h.timeouts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    const err = await p;
    expect(isCallboxError(err, ErrorCode.ModemTimeout)).toBe(true);
    expect(err.message).toBe('AT+CSQ got no final result within 2000 ms');
    expect(err.stack).toContain('askSignal');
    expect(h.timeouts).toEqual([['AT+CSQ', 1]]);
    // Resync: AT goes out; the late reply to AT+CSQ arrives, then our OK, then quiet.
    expect(h.written.at(-1)).toBe('AT\r');
    h.rx('\r\n+CSQ: 12,99\r\n\r\nOK\r\n'); // late CSQ reply: its OK is taken by the resync
    h.rx('\r\nOK\r\n'); // the AT's own OK: eaten during the quiet time
    await vi.advanceTimersByTimeAsync(100);
    expect(h.written.at(-1)).toBe('AT+CREG?\r');
    h.rx('\r\n+CREG: 0,1\r\n\r\nOK\r\n');
    expect((await next).lines).toEqual(['+CREG: 0,1']);
    expect(h.ch.stats.consecutiveTimeouts).toBe(0);
  });

  it('counts consecutive timeouts and never stalls with a dead modem', async () => {
    const h = harness();
    const results = Array.from({ length: 4 }, (_, i) =>
      h.ch.run({ command: `AT+X${i}`, timeoutMs: 500, priority: Priority.Normal }).catch((e) => e.code),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await Promise.all(results)).toEqual(Array(4).fill(ErrorCode.ModemTimeout));
    expect(h.timeouts.at(-1)?.[1]).toBeGreaterThanOrEqual(4);
    expect(h.ch.busy).toBe(false);
  });

  it('fails every pending command at detach, and new ones at once', async () => {
    const h = harness();
    const a = h.ch.run({ command: 'AT+CLCC', timeoutMs: 5000, priority: Priority.CallControl }).catch((e) => e);
    const b = h.ch.run({ command: 'AT+CSQ', timeoutMs: 5000, priority: Priority.Poll }).catch((e) => e);
    await flush();
    h.ch.detach(new (await import('../../../shared/errors.js')).CallboxError(ErrorCode.ModemDisconnected, 'port gone'));
    expect((await a).code).toBe(ErrorCode.ModemDisconnected);
    expect((await b).code).toBe(ErrorCode.ModemDisconnected);
    const c = await h.ch.run({ command: 'AT', timeoutMs: 5000, priority: Priority.Poll }).catch((e) => e);
    expect(c.code).toBe(ErrorCode.ModemDisconnected);
    expect(c.message).toContain('AT: port gone');
  });

  it('sends the body after the "> " prompt (AT+CMGS)', async () => {
    const h = harness();
    const p = h.ch.run({
      command: 'AT+CMGS="+15551234567"',
      body: 'Hello',
      prefixes: ['+CMGS:'],
      timeoutMs: 1000,
      priority: Priority.Sms,
    });
    await flush();
    h.rx('\r\n> ');
    await flush();
    expect(h.written.at(-1)).toBe('Hello\x1a');
    h.rx('\r\n+CMGS: 5\r\n\r\nOK\r\n');
    expect((await p).lines).toEqual(['+CMGS: 5']);
  });

  it('cancels a prompt with ESC when AT+CMGS times out, so the next command is not taken as text', async () => {
    const h = harness();
    const p = h.ch
      .run({ command: 'AT+CMGS=20', body: '00AA', prefixes: ['+CMGS:'], timeoutMs: 1000, priority: Priority.Sms })
      .catch((e) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect((await p).code).toBe(ErrorCode.ModemTimeout);
    expect(h.written.slice(-2)).toEqual(['\x1b', 'AT\r']);
  });

  it('takes the body line after +CMGR whatever it says', async () => {
    const h = harness();
    const p = h.ch.run({
      command: 'AT+CMGR=1',
      prefixes: ['+CMGR:'],
      bodyLines: 1,
      timeoutMs: 1000,
      priority: Priority.Sms,
    });
    await flush();
    h.rx('\r\n+CMGR: "REC UNREAD","+15551234567",,"26/11/26,10:00:00+00"\r\nRING\r\n\r\nOK\r\n');
    expect((await p).lines).toEqual(['+CMGR: "REC UNREAD","+15551234567",,"26/11/26,10:00:00+00"', 'RING']);
    expect(h.urcs).toHaveLength(0);
  });

  it('counts unclaimed lines and stray finals as discarded', async () => {
    const h = harness();
    h.rx('\r\nOK\r\n\r\nHELLO WORLD\r\n');
    expect(h.discarded).toEqual(['OK', 'HELLO WORLD']);
    expect(h.ch.stats.strayFinals).toBe(1);
  });
});
