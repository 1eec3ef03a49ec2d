/**
 * Driver behaviour over a scripted in-memory byte stream (the transport
 * seam), with fake timers: reset policy, reopen backoff, ring timeout,
 * reboot mid-call, SIM and network states, bad input.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { encodeDeliver } from './at/pdu.js';
import { modemConfig } from './config.js';
import { createModem, type GsmModem } from './driver.js';
import type { ByteStream, ByteStreamEvents, OpenOptions } from './transport.js';
import type { ModemState } from './types.js';

type Responder = (cmd: string) => string | null | undefined;

class FakeStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  readonly description = 'fake';
  closed = false;
  readonly written: string[] = [];
  constructor(private readonly respond: Responder) {
    super();
  }
  write(d: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('closed'));
    for (const cmd of d.toString().split('\r').filter(Boolean)) {
      this.written.push(cmd);
      const r = this.respond(cmd);
      if (r != null) queueMicrotask(() => this.push(r));
    }
    return Promise.resolve();
  }
  push(s: string): void {
    if (!this.closed) this.emit('data', Buffer.from(s));
  }
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.emit('close', null);
    }
    return Promise.resolve();
  }
  vanish(): void {
    this.closed = true;
    this.emit('close', new Error('EIO: i/o error'));
  }
}

/** A tiny generic modem: enough for the driver's start-up. */
class Script {
  calls: string[] = [];
  sim = 'READY';
  creg = '+CREG: 2,1,"00C3","A13B"';
  silent = new Set<string>();
  respond: Responder = (cmd) => {
    if (this.silent.has(cmd) || this.silent.has('*')) return null;
    const ok = '\r\nOK\r\n';
    if (cmd === 'AT+CGMI') return `\r\nFakeCo\r\n${ok}`;
    if (cmd === 'AT+CGMM') return `\r\nFake 1\r\n${ok}`;
    if (cmd === 'AT+CGMR') return `\r\n1.0\r\n${ok}`;
    if (cmd === 'AT+CGSN') return `\r\n867584030123456\r\n${ok}`;
    if (cmd === 'AT+CIMI') return `\r\n001010123456789\r\n${ok}`;
    if (cmd === 'AT+CPIN?')
      return this.sim === 'MISSING' ? '\r\n+CME ERROR: 10\r\n' : `\r\n+CPIN: ${this.sim}\r\n${ok}`;
    if (cmd === 'AT+CREG?') return `\r\n${this.creg}\r\n${ok}`;
    if (cmd === 'AT+CSQ') return `\r\n+CSQ: 20,99\r\n${ok}`;
    if (cmd === 'AT+COPS?') return `\r\n+COPS: 0,0,"Test",7\r\n${ok}`;
    if (cmd === 'AT+CLCC') return `${this.calls.map((c) => `\r\n${c}\r\n`).join('')}${ok}`;
    if (cmd.startsWith('AT+CTFR')) return '\r\nOK\r\n';
    return ok;
  };
}

function setup(cfg: Partial<Parameters<typeof modemConfig>[0]> = {}) {
  const script = new Script();
  const streams: FakeStream[] = [];
  const opens: number[] = [];
  let failOpens = 0;
  const node = { present: true };
  const modem = createModem(
    modemConfig({
      path: '/dev/fake',
      commandTimeoutMs: 1000,
      callControlTimeoutMs: 5000,
      maxConsecutiveTimeouts: 3,
      reopenMinMs: 100,
      reopenMaxMs: 1000,
      ringEndMs: 10_000,
      clipWaitMs: 300,
      ...cfg,
    }),
    {
      openStream: async (_o: OpenOptions) => {
        opens.push(Date.now());
        if (failOpens > 0) {
          failOpens--;
          throw new Error('ENOENT: no such file');
        }
        const s = new FakeStream(script.respond);
        streams.push(s);
        return s;
      },
      devicePresent: async () => node.present,
    },
  );
  const states: ModemState[] = [];
  modem.on('state', (s) => states.push(s));
  return {
    modem,
    script,
    streams,
    opens,
    states,
    failNextOpens: (n: number) => {
      failOpens = n;
    },
    node,
    last: () => streams.at(-1) as FakeStream,
  };
}

async function started(h: ReturnType<typeof setup>): Promise<GsmModem> {
  const p = h.modem.start();
  await vi.advanceTimersByTimeAsync(50);
  await p;
  expect(h.modem.state).toBe('ready');
  return h.modem;
}

describe('GsmModem (fake stream, fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts: echo off, verbose errors, caller id, identity, network', async () => {
    const h = setup();
    const m = await started(h);
    expect(h.last().written.slice(0, 6)).toEqual(['AT', 'ATE0', 'AT+CMEE=2', 'AT+CLIP=1', 'AT+CRC=1', 'AT+CREG=2']);
    expect(m.identity).toMatchObject({
      manufacturer: 'FakeCo',
      model: 'Fake 1',
      imei: '867584030123456',
      profile: 'generic',
    });
    expect(m.network).toMatchObject({
      registration: 'home',
      lac: '00C3',
      cellId: 'A13B',
      signalDbm: -73,
      operator: 'Test',
    });
    await m.stop();
  });

  it('one timeout does not reset; maxConsecutiveTimeouts in a row do, and the modem comes back', async () => {
    const h = setup();
    const m = await started(h);
    h.script.silent.add('AT+CSQ');
    const firstP = m.refreshNetwork().catch((e) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(isCallboxError(await firstP, ErrorCode.ModemTimeout)).toBe(true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.states).not.toContain('resetting');
    expect(m.state).toBe('ready');
    // Three in a row (the resync AT answers, so only the CSQs count as the modem stays partly deaf).
    h.script.silent.add('*');
    const asks = [m.refreshNetwork(), m.refreshNetwork(), m.refreshNetwork()].map((p) => p.catch((e) => e));
    await vi.advanceTimersByTimeAsync(10_000);
    for (const e of await Promise.all(asks)) expect(e).toBeInstanceOf(Error);
    expect(h.states).toContain('resetting');
    // The modem answers again: the reset's ATZ and a fresh start-up bring it back.
    h.script.silent.clear();
    await vi.advanceTimersByTimeAsync(5000);
    expect(m.state).toBe('ready');
    expect(m.stats.resets + m.stats.reopens).toBeGreaterThan(0);
    await m.stop();
  });

  it('port vanishing: disconnected, pending commands fail clearly, reopen with backoff', async () => {
    const h = setup();
    const m = await started(h);
    h.script.silent.add('AT+CCFC=0,2');
    const pending = m.queryForwarding('unconditional').catch((e) => e);
    await vi.advanceTimersByTimeAsync(10);
    h.failNextOpens(2);
    h.node.present = false; // gone for good: only the backoff reopens (the node never comes back)
    const t0 = Date.now();
    h.last().vanish();
    const err = await pending;
    expect(isCallboxError(err, ErrorCode.ModemDisconnected)).toBe(true);
    expect(err.message).toMatch(/AT\+CCFC|gone/);
    expect(m.state).toBe('disconnected');
    // Commands while disconnected fail at once.
    const now = await m.listCalls().catch((e) => e);
    expect(isCallboxError(now, ErrorCode.ModemDisconnected)).toBe(true);
    h.script.silent.clear();
    await vi.advanceTimersByTimeAsync(2000);
    expect(m.state).toBe('ready');
    const gaps = h.opens.slice(1).map((t) => t - t0);
    expect(gaps).toEqual([100, 300, 700]); // 100, then +200, then +400
    await m.stop();
  });

  it('liveness: a line with traffic is never probed; a silent one is, and no answer closes and reopens the port', async () => {
    const h = setup({ livenessMs: 1000 });
    const m = await started(h);
    await vi.advanceTimersByTimeAsync(10);
    const base = h.last().written.length;
    for (let i = 0; i < 8; i++) {
      h.last().push('\r\n^RSSI: 20\r\n'); // something arrives every half second
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(h.last().written.slice(base)).toEqual([]);
    // Silent from now on, and deaf: one probe, then the port is dropped.
    h.script.silent.add('*');
    await vi.advanceTimersByTimeAsync(1499);
    expect(h.last().written.slice(base)).toEqual(['AT']);
    expect(m.state).toBe('ready');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.states).toContain('disconnected');
    expect(h.streams[0]?.closed).toBe(true);
    h.script.silent.clear();
    await vi.advanceTimersByTimeAsync(5000);
    expect(m.state).toBe('ready');
    expect(h.streams.length).toBeGreaterThanOrEqual(2);
    await m.stop();
  });

  it('a node that was gone and is back is reopened at once, not at the next backoff step', async () => {
    const h = setup({ reopenMinMs: 1000, reopenMaxMs: 60_000 });
    const m = await started(h);
    h.node.present = false;
    h.failNextOpens(100);
    h.last().vanish();
    await vi.advanceTimersByTimeAsync(20_000); // attempts at 1, 3, 7, 15 s (backoff), all failing
    expect(h.opens.length).toBe(5);
    expect(m.state).toBe('disconnected');
    h.failNextOpens(0);
    h.node.present = true;
    await vi.advanceTimersByTimeAsync(150);
    expect(h.opens.length).toBe(6);
    expect(m.state).toBe('ready');
    await m.stop();
  });

  it('a ringing call with no RING for ringEndMs is looked up and ended', async () => {
    const h = setup({ callPollMs: 60_000 });
    const m = await started(h);
    const rings: unknown[] = [];
    const ended: unknown[] = [];
    m.on('ring', (r) => rings.push(r));
    m.on('callEnded', (e) => ended.push(e));
    h.script.calls = ['+CLCC: 1,1,4,0,0,"+15551234567",145'];
    h.last().push('\r\nRING\r\n\r\n+CLIP: "+15551234567",145,,,,0\r\n');
    await vi.advanceTimersByTimeAsync(10);
    expect(rings).toEqual([{ number: '+15551234567', withheld: false, count: 1 }]);
    expect(m.calls.map((c) => c.stat)).toEqual(['incoming']);
    // The caller gives up; this modem says nothing.
    h.script.calls = [];
    await vi.advanceTimersByTimeAsync(9_000);
    expect(ended).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(ended).toEqual([{ index: 1, reason: 'ring_timeout' }]);
    await m.stop();
  });

  it('a listed call that disappears without any end line is caught by the call poll', async () => {
    const h = setup({ callPollMs: 3000 });
    const m = await started(h);
    const ended: unknown[] = [];
    m.on('callEnded', (e) => ended.push(e));
    h.script.calls = ['+CLCC: 1,1,0,0,0,"+15551234567",145'];
    await m.listCalls();
    h.script.calls = [];
    await vi.advanceTimersByTimeAsync(3010);
    expect(ended).toEqual([{ index: 1, reason: 'gone' }]);
    await m.stop();
  });

  it('a RING and +CLIP inside an AT+CSQ reply: the reply and the call event both come out right', async () => {
    const h = setup();
    const m = await started(h);
    const rings: unknown[] = [];
    m.on('ring', (r) => rings.push(r));
    h.script.calls = ['+CLCC: 1,1,4,0,0,"+15551234567",145'];
    const base = h.script.respond;
    const stream = h.last();
    // This modem interleaves the call's URCs with its answer to AT+CSQ.
    (stream as unknown as { respond: Responder }).respond = (cmd) =>
      cmd === 'AT+CSQ' ? '\r\n+CSQ: 9,99\r\n\r\nRING\r\n\r\n+CLIP: "+15551234567",145,,,,0\r\n\r\nOK\r\n' : base(cmd);
    const p = m.refreshNetwork();
    await vi.advanceTimersByTimeAsync(50);
    expect((await p).signalDbm).toBe(-95);
    expect(rings).toEqual([{ number: '+15551234567', withheld: false, count: 1 }]);
    expect(m.calls.map((c) => c.number)).toEqual(['+15551234567']);
    expect(m.stats.discarded).toBe(0);
    await m.stop();
  });

  it('a RING whose +CLIP never comes is reported after clipWaitMs without a number', async () => {
    const h = setup();
    const m = await started(h);
    const rings: unknown[] = [];
    m.on('ring', (r) => rings.push(r));
    h.last().push('\r\n+CRING: VOICE\r\n');
    await vi.advanceTimersByTimeAsync(299);
    expect(rings).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(rings).toEqual([{ number: null, withheld: false, count: 1 }]);
    await m.stop();
  });

  it('modem rebooting mid-call: the call ends, the modem is re-initialised', async () => {
    const h = setup();
    const m = await started(h);
    h.script.calls = ['+CLCC: 1,1,0,0,0,"+15551234567",145'];
    await m.listCalls();
    const ended: unknown[] = [];
    m.on('callEnded', (e) => ended.push(e));
    h.script.calls = [];
    h.last().push('\r\nRDY\r\n\r\n+CPIN: READY\r\n');
    await vi.advanceTimersByTimeAsync(100);
    expect(ended).toEqual([{ index: 1, reason: 'modem_restarted' }]);
    expect(h.states.slice(-2)).toEqual(['initializing', 'ready']);
    await m.stop();
  });

  it('reports SIM missing and registration denied as states, not crashes', async () => {
    const h = setup();
    h.script.sim = 'MISSING';
    const p = h.modem.start();
    await vi.advanceTimersByTimeAsync(50);
    await p;
    expect(h.modem.state).toBe('sim_missing');
    h.script.sim = 'READY';
    h.script.creg = '+CREG: 2,3';
    await vi.advanceTimersByTimeAsync(30_000); // the health check retries
    expect(h.modem.state).toBe('ready');
    expect(h.modem.network.registration).toBe('denied');
    await h.modem.stop();
  });

  it('refuses bad input clearly and writes nothing', async () => {
    const h = setup();
    const m = await started(h);
    const before = h.last().written.length;
    const e1 = await m.deflect('+1555;ATD112').catch((e) => e);
    expect(isCallboxError(e1, ErrorCode.ValidationFailed)).toBe(true);
    expect(e1.message).toMatch(/deflect: number "\+1555;ATD112" is not a phone number/);
    const e2 = await m.setForwarding('no_reply', true, '+15551234567', 99).catch((e) => e);
    expect(isCallboxError(e2, ErrorCode.ValidationFailed)).toBe(true);
    const e3 = await m.sendSms('+15551234567', '').catch((e) => e);
    expect(isCallboxError(e3, ErrorCode.ValidationFailed)).toBe(true);
    expect(h.last().written.length).toBe(before);
    await m.stop();
  });

  it('reports a long SMS with a part missing after smsConcatWaitS', async () => {
    const h = setup({ smsConcatWaitS: 60 });
    const m = await started(h);
    const at = new Date('2026-11-26T10:00:00Z');
    const store = new Map<number, string>([
      [1, encodeDeliver('+15557654321', 'first half, ', at, { ref: 9, total: 3, seq: 1 })],
      [3, encodeDeliver('+15557654321', 'last part', at, { ref: 9, total: 3, seq: 3 })],
    ]);
    const base = h.script.respond;
    (h.last() as unknown as { respond: Responder }).respond = (cmd) => {
      const mm = /^AT\+CMGR=(\d+)$/.exec(cmd);
      if (!mm) return base(cmd);
      const pdu = store.get(Number(mm[1]));
      return pdu ? `\r\n+CMGR: 0,,${pdu.length / 2 - 1}\r\n${pdu}\r\n\r\nOK\r\n` : '\r\n+CMS ERROR: 321\r\n';
    };
    const got: unknown[] = [];
    m.on('sms', (s) => got.push(s));
    h.last().push('\r\n+CMTI: "SM",1\r\n\r\n+CMTI: "SM",3\r\n');
    await vi.advanceTimersByTimeAsync(59_000);
    expect(got).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(got).toMatchObject([
      {
        index: 1,
        indexes: [1, 3],
        from: '+15557654321',
        text: 'first half, last part',
        at: '2026-11-26T10:00:00.000Z',
      },
    ]);
    await m.stop();
  });

  it('a command before start() fails at once instead of waiting', async () => {
    const h = setup();
    const e = await h.modem.listCalls().catch((x) => x);
    expect(isCallboxError(e, ErrorCode.ModemNotReady)).toBe(true);
  });

  it('stop fails what is pending and closes', async () => {
    const h = setup();
    const m = await started(h);
    h.script.silent.add('AT+CSQ');
    const p = m.refreshNetwork().catch((e) => e);
    await vi.advanceTimersByTimeAsync(10);
    await m.stop();
    expect(isCallboxError(await p, ErrorCode.ShuttingDown)).toBe(true);
    expect(m.state).toBe('closed');
  });
});
