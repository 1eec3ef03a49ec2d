/**
 * A scripted in-memory byte stream under the real modem driver (the
 * transport seam, device/modem/transport.ts), for driver tests on fake
 * timers: each command written gets the answer `respond` gives (null: no
 * answer), and a test pushes unsolicited lines with push().
 */
import { EventEmitter } from 'node:events';
import { vi } from 'vitest';
import { modemConfig } from '../../device/modem/config.js';
import { createModem, type GsmModem } from '../../device/modem/driver.js';
import type { ByteStream, ByteStreamEvents } from '../../device/modem/transport.js';
import type { Logger } from '../../shared/log.js';

export type Responder = (cmd: string) => string | null | undefined;

export class FakeStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  readonly description = 'fake';
  closed = false;
  readonly written: string[] = [];
  constructor(public respond: Responder) {
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
  push(s: string | Buffer): void {
    if (!this.closed) this.emit('data', typeof s === 'string' ? Buffer.from(s) : s);
  }
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.emit('close', null);
    }
    return Promise.resolve();
  }
}

const OK = '\r\nOK\r\n';

/** A plain 27.007 modem, registered, with a SIM: enough for the driver's start-up. `over` answers first. */
export function genericModem(over: Responder = () => undefined): Responder {
  return (cmd) => {
    const o = over(cmd);
    if (o !== undefined) return o;
    if (cmd === 'AT+CGMI') return `\r\nFakeCo\r\n${OK}`;
    if (cmd === 'AT+CGMM') return `\r\nFake 1\r\n${OK}`;
    if (cmd === 'AT+CGMR') return `\r\n1.0\r\n${OK}`;
    if (cmd === 'AT+CGSN') return `\r\n867584030123456\r\n${OK}`;
    if (cmd === 'AT+CIMI') return `\r\n001010123456789\r\n${OK}`;
    if (cmd === 'AT+CPIN?') return `\r\n+CPIN: READY\r\n${OK}`;
    if (cmd === 'AT+CREG?') return `\r\n+CREG: 2,1,"00C3","A13B"\r\n${OK}`;
    if (cmd === 'AT+CSQ') return `\r\n+CSQ: 20,99\r\n${OK}`;
    if (cmd === 'AT+COPS?') return `\r\n+COPS: 0,0,"Test",7\r\n${OK}`;
    if (cmd === 'AT+CLCC') return OK;
    if (cmd.startsWith('AT+CMGL')) return OK;
    return OK;
  };
}

/** The driver on one FakeStream, started (fake timers must be on). */
export async function startedDriver(
  respond: Responder,
  cfg: Partial<Parameters<typeof modemConfig>[0]> = {},
  opts: { logger?: Logger } = {},
): Promise<{ modem: GsmModem; stream: FakeStream }> {
  let stream: FakeStream | null = null;
  const modem = createModem(
    modemConfig({ path: '/dev/fake', commandTimeoutMs: 1000, callControlTimeoutMs: 5000, ...cfg }),
    {
      openStream: async () => {
        stream = new FakeStream(respond);
        return stream;
      },
      devicePresent: async () => true,
      ...(opts.logger ? { logger: opts.logger } : {}),
    },
  );
  const p = modem.start();
  await vi.advanceTimersByTimeAsync(50);
  await p;
  if (!stream) throw new Error('the driver opened no stream');
  return { modem, stream };
}
