/**
 * Item 13: every broker refusal leaves a warn line naming the identity, the
 * source and the reason (rate-limited: a flood gives one line with a count)
 * and is counted in the fleet's metrics. The attack: wrong passwords, an
 * unknown user, a publish and a subscribe outside the ACL, an oversized
 * payload and a message flood. Before the fix none of them left a line or
 * a metric the fleet could see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLogStream, setupLogging } from '../../shared/log.js';

// Loggers are made when their modules load: set up the capture before loading the fleet.
const logs = new MemoryLogStream();
setupLogging({ level: 'warn', destination: logs });
const { connectClient, granted, provisionBox, startTestFleet } = await import('../helpers/fleet.js');
const { deviceTopics } = await import('../../shared/contract/topics.js');
const { recordAttack } = await import('./attacks.js');

type TF = Awaited<ReturnType<typeof startTestFleet>>;

describe('security 13: broker refusals logged and counted', () => {
  let tf: TF;
  beforeAll(async () => {
    tf = await startTestFleet({ mqtt: { maxPayloadBytes: 2048, ratePerSecond: 5, rateBurst: 10 } });
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('logs each kind of refusal at warn with who and why, once per window, and counts every one', async () => {
    const a = await provisionBox(tf, 'SEC13-A01');
    const b = await provisionBox(tf, 'SEC13-B01');
    let attempts = 0;
    for (let i = 0; i < 5; i++) {
      attempts++;
      await expect(connectClient(tf.url, { username: a.username, password: `wrong-password-${i}` })).rejects.toThrow();
    }
    attempts++;
    await expect(connectClient(tf.url, { username: 'cb-nobody-here', password: 'x'.repeat(16) })).rejects.toThrow();
    const c = await connectClient(tf.url, { username: a.username, password: a.password });
    attempts++;
    expect(await granted(c, [deviceTopics(b.deviceId).cmdReq])).toEqual([128]);
    attempts++;
    c.publish(deviceTopics(b.deviceId).events, '{}', { qos: 1 });
    await new Promise<void>((r) => c.once('close', () => r()));
    const big = await connectClient(tf.url, { username: a.username, password: a.password });
    attempts++;
    big.publish(deviceTopics(a.deviceId).telemetry, Buffer.alloc(4096, 0x20), { qos: 1 });
    await new Promise<void>((r) => big.once('close', () => r()));
    const flood = await connectClient(tf.url, { username: b.username, password: b.password });
    // Past the burst of 10 the broker cuts the connection: one refusal, the rest never reaches it.
    for (let i = 0; i < 40; i++) flood.publish(deviceTopics(b.deviceId).telemetry, '', { qos: 0 });
    attempts++;
    await new Promise<void>((r) => flood.once('close', () => r()));

    const lines = () => logs.lines.filter((l) => l.msg === 'broker refused' && l.level === 'warn');
    await expect.poll(() => new Set(lines().map((l) => l.kind)).size, { timeout: 10_000 }).toBe(5);
    const byKind = (k: string) => lines().filter((l) => l.kind === k);
    expect(byKind('auth').filter((l) => l.who === a.username)).toHaveLength(1); // 5 wrong passwords: one line
    expect(byKind('auth').find((l) => l.who === a.username)).toMatchObject({
      reason: 'wrong password',
      source: '127.0.0.1',
    });
    expect(byKind('auth').find((l) => l.who === 'cb-nobody-here')).toMatchObject({ reason: 'no such credential' });
    expect(byKind('subscribe')[0]).toMatchObject({
      who: a.username,
      reason: `subscribe to ${deviceTopics(b.deviceId).cmdReq}`,
    });
    expect(byKind('publish')[0]).toMatchObject({
      who: a.username,
      reason: `publish to ${deviceTopics(b.deviceId).events}`,
    });
    expect(byKind('size')[0]).toMatchObject({ who: a.username });
    expect(byKind('rate')[0]).toMatchObject({ who: b.username });

    // The broker child pushes its counters to the supervisor every few hundred ms, apart from the log lines:
    // wait for a snapshot that has them all.
    await expect
      .poll(() => tf.fleet.metrics().broker, { timeout: 10_000 })
      .toMatchObject({ authFailed: 6, subscribeDenied: 1, publishDenied: 1, tooLarge: 1 });
    const m = tf.fleet.metrics().broker;
    // Past the burst the broker cuts the flood's connection (what was already in flight may be counted too).
    expect(m?.rateLimited).toBeGreaterThanOrEqual(1);
    const refused =
      (m?.authFailed ?? 0) +
      (m?.subscribeDenied ?? 0) +
      (m?.publishDenied ?? 0) +
      (m?.tooLarge ?? 0) +
      (m?.rateLimited ?? 0);
    expect(refused).toBe(attempts);
    recordAttack({ item: 13, attack: 'refused logins, ACL, size, rate: logged and counted', attempts, refused });
  });
});
