/**
 * Item 8: a packet-size cap applied before authentication. The attack: four
 * raw TCP sockets each announce a CONNECT of ~256 MB and start sending it.
 * Before the fix aedes buffered every byte until its connect timeout (the
 * broker child grew from 196 MB to 1 162 MB and kept it); now the fixed
 * header alone gets the connection cut.
 */
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** MQTT remaining length (1-4 bytes of 7 bits, least significant first). */
function remainingLength(n: number): Buffer {
  const out: number[] = [];
  let x = n;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    out.push(b);
  } while (x > 0);
  return Buffer.from(out);
}

/** Announce a CONNECT of `announced` bytes and send up to `send` of it; how many bytes went before the close. */
function hugeConnect(port: number, announced: number, send: number): Promise<{ sent: number; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s: Socket = createConnection({ port, host: '127.0.0.1' });
    let sent = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve({ sent, ms: Date.now() - started });
    };
    s.on('error', finish);
    s.on('close', finish);
    const block = Buffer.alloc(64 * 1024, 0x41);
    const pump = () => {
      while (!done && sent < send) {
        sent += block.length;
        if (!s.write(block)) return void s.once('drain', pump);
      }
    };
    s.on('connect', () => {
      s.write(Buffer.concat([Buffer.from([0x10]), remainingLength(announced)]));
      pump();
    });
  });
}

describe('security 8: huge CONNECT packets before authentication', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet({ mqtt: { connectTimeoutMs: 10_000 } });
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('cuts each connection at its header, holding nothing of the body', async () => {
    const pid = tf.fleet.broker?.pid as number;
    const port = Number(new URL(tf.url).port);
    const before = rssBytes(pid);
    const statsBefore = await tf.fleet.broker?.stats();
    const results = await Promise.all(
      Array.from({ length: 4 }, () => hugeConnect(port, 250_000_000, 32 * 1024 * 1024)),
    );
    const grown = rssBytes(pid) - before;
    const stats = await tf.fleet.broker?.stats();
    for (const r of results) {
      // Cut long before the connect timeout (10 s), and long before the 32 MB were through.
      expect(r.ms).toBeLessThan(5000);
      expect(r.sent).toBeLessThan(32 * 1024 * 1024);
    }
    expect(grown, `broker grew by ${(grown / 1e6).toFixed(1)} MB`).toBeLessThan(24 * 1024 * 1024);
    expect((stats?.tooLarge ?? 0) - (statsBefore?.tooLarge ?? 0)).toBe(4);
    recordAttack({ item: 8, attack: 'announce 256 MB CONNECT packets (4 sockets)', attempts: 4, refused: 4 });
  });
});
