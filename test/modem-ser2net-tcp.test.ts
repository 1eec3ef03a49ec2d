/** End to end: the driver reaches the modem through a tcp:// path, as behind ser2net (raw TCP <-> serial). */
import { createServer, type Server, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { modemConfig } from '../device/modem/config.js';
import { createModem, type GsmModem } from '../device/modem/driver.js';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import { nextEvent, waitState } from './modem-helpers.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A minimal ser2net: one TCP client at a time, bytes copied both ways to the serial port. */
async function ser2net(path: string): Promise<{ server: Server; port: number; serial: SerialPort; drop(): void }> {
  const serial = new SerialPort({ path, baudRate: 115200 });
  await new Promise<void>((res, rej) => serial.once('open', res).once('error', rej));
  let client: Socket | null = null;
  serial.on('data', (d: Buffer) => client?.write(d));
  const server = createServer((s) => {
    client = s;
    s.on('data', (d) => serial.write(d));
    s.on('error', () => {});
    s.on('close', () => {
      if (client === s) client = null;
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { server, port, serial, drop: () => client?.destroy() };
}

describe('modem behind ser2net (tcp://)', () => {
  it('starts, reports an incoming call, and reconnects after the TCP link drops', async () => {
    const emu = new ModemEmulator({ vendor: 'ec25', ringIntervalMs: 150 });
    const { path } = await emu.start();
    const bridge = await ser2net(path);
    const modem: GsmModem = createModem(
      modemConfig({ path: `tcp://127.0.0.1:${bridge.port}`, commandTimeoutMs: 1000, reopenMinMs: 100 }),
    );
    cleanup = async () => {
      await modem.stop();
      await new Promise<void>((r) => bridge.server.close(() => r()));
      await new Promise<void>((r) => bridge.serial.close(() => r()));
      await emu.stop();
    };
    await modem.start();
    expect(modem.state).toBe('ready');
    expect(modem.identity.profile).toBe('ec25');
    const ring = nextEvent(modem, 'ring');
    emu.incomingCall('+15551234567');
    expect((await ring)[0].number).toBe('+15551234567');

    bridge.drop();
    await waitState(modem, 'disconnected');
    await waitState(modem, 'ready', 5000);
    expect((await modem.listCalls())[0]?.number).toBe('+15551234567');
  });
});
