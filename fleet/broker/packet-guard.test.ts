import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PacketGuard } from './packet-guard.js';

function remaining(n: number): Buffer {
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
const packet = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type << 4]), remaining(body.length), body]);
const CONNECT = packet(1, Buffer.from('\u0000\u0004MQTT\u0004\u0002\u0000\u003c\u0000\u0001x', 'latin1'));
const publish = (size: number) => packet(3, Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.alloc(size, 0x61)]));

/** A guard over a fake socket: push bytes in with feed(); what passes and any refusal are recorded. */
function rig(firstPacketMax = 1024, packetMax = 4096) {
  const inner = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  const refusals: string[] = [];
  const guard = new PacketGuard(inner, { firstPacketMax, packetMax, onRefuse: (r) => refusals.push(r) });
  const passed: Buffer[] = [];
  guard.on('data', (c: Buffer) => passed.push(c));
  guard.on('error', () => undefined);
  return {
    feed: (b: Buffer) => inner.push(b),
    passed: () => Buffer.concat(passed),
    refusals,
    inner,
    guard,
  };
}
const settle = () => new Promise((r) => setImmediate(r));

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('PacketGuard: packet-size caps on the raw bytes', () => {
  it('passes a stream of valid packets through unchanged however it is cut (seeded)', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 100000);
    console.log(`packet-guard fuzz seed ${seed} (FUZZ_SEED=${seed} to repeat)`);
    const rnd = mulberry32(seed);
    for (let round = 0; round < 50; round++) {
      const r = rig();
      const stream = Buffer.concat([CONNECT, ...Array.from({ length: 20 }, () => publish(Math.floor(rnd() * 4000)))]);
      for (let at = 0; at < stream.length; ) {
        const n = 1 + Math.floor(rnd() * 300);
        r.feed(stream.subarray(at, at + n));
        at += n;
      }
      await settle();
      expect(r.refusals, `seed ${seed} round ${round}`).toEqual([]);
      expect(r.passed().equals(stream), `seed ${seed} round ${round}`).toBe(true);
    }
  });

  it('cuts a connection whose first packet is not a CONNECT, or is too large, at its header', async () => {
    const notConnect = rig();
    notConnect.feed(publish(10));
    await settle();
    expect(notConnect.refusals).toEqual(['the first packet is not a CONNECT']);
    expect(notConnect.passed().length).toBe(0);
    expect(notConnect.inner.destroyed).toBe(true);

    const huge = rig();
    huge.feed(Buffer.concat([Buffer.from([0x10]), remaining(250_000_000)]));
    await settle();
    expect(huge.refusals).toEqual(['CONNECT of 250000000 bytes announced, over the 1024 allowed']);
    expect(huge.passed().length).toBe(0);
  });

  it('cuts a later packet over packetMax, unless the connection was allowed more', async () => {
    const r = rig();
    r.feed(Buffer.concat([CONNECT, publish(100), publish(5000)]));
    await settle();
    expect(r.refusals[0]).toMatch(/packet of 5003 bytes announced, over the 4096 allowed/);
    const fleet = rig();
    fleet.feed(CONNECT);
    await settle();
    fleet.guard.allow(268_435_455);
    const big = publish(100_000);
    fleet.feed(big);
    await settle();
    expect(fleet.refusals).toEqual([]);
    expect(fleet.passed().length).toBe(CONNECT.length + big.length);
  });
});
