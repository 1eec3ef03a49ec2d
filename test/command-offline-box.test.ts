/**
 * A command for a box the fleet knows is offline answers at once: queued until its expiry when the box may still
 * run it on its return (its persistent session keeps it), refused when it would expire first. And the queued
 * command does reach the box when it comes back.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics } from '../shared/contract/topics.js';
import { waitFor } from '../shared/wait.js';
import { connectClient, provisionBox, runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('commands for an offline box', () => {
  let tf: TestFleet;
  let creds: { deviceId: string; username: string; password: string };
  const cli = async (args: string[]) => {
    const t0 = Date.now();
    const r = await runFleetCli(tf.url, args, tf.adminPassword);
    return { ...r, ms: Date.now() - t0 };
  };

  beforeAll(async () => {
    tf = await startTestFleet();
    creds = await provisionBox(tf, 'CB-OFF-0001');
    // The box comes online (persistent session, subscribed to its commands), then goes away.
    const c = await connectClient(tf.url, { ...creds, clientId: creds.deviceId, clean: false });
    await c.subscribeAsync(deviceTopics(creds.deviceId).cmdReq, { qos: 1 });
    const status = (state: string) => JSON.stringify({ v: 1, state, at: new Date().toISOString() });
    await c.publishAsync(deviceTopics(creds.deviceId).status, status('online'), { qos: 1 });
    await waitFor(() => tf.fleet.presence.isOnline(creds.deviceId), 'online', 10_000);
    await c.publishAsync(deviceTopics(creds.deviceId).status, status('offline'), { qos: 1 });
    await waitFor(() => !tf.fleet.presence.isOnline(creds.deviceId), 'offline', 10_000);
    await c.endAsync();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('refuses at once a command that would expire before the box is back', async () => {
    const r = await cli(['boxes', 'command', 'CB-OFF-0001', 'diagnostics.collect', '--wait', '3000']);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(
      /^fleet: (boxes.command failed: )?box CB-OFF-0001 is offline since \d{4}-\d\d-\d\dT\S+Z; the command would expire within 3000 ms, before the box could get it: not sent \(give it a longer expiry, --expires <seconds>, to queue it until the box is back\)\n$/,
    );
    expect(r.ms).toBeLessThan(2500);
  });

  it('queues a command with a longer expiry, says until when, and the box runs it when it is back', async () => {
    const r = await cli(['boxes', 'command', 'CB-OFF-0001', 'indicators.test', '--wait', '20000', '--expires', '3600']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = /^box CB-OFF-0001 is offline since \S+Z; the command is queued until (\S+Z)\n$/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(Math.abs(Date.parse(m?.[1] ?? '') - (Date.now() + 3_600_000))).toBeLessThan(10_000);
    expect(r.ms).toBeLessThan(2500);

    // The box returns: its persistent session hands it the queued command, with the expiry it was given.
    const requests: { method: string; expiresAt?: string }[] = [];
    const c = mqtt.connect(tf.url, { ...creds, clientId: creds.deviceId, clean: false, reconnectPeriod: 0 });
    c.on('message', (_t, p) => requests.push(JSON.parse(p.toString())));
    try {
      await waitFor(() => requests.some((q) => q.method === 'indicators.test'), 'the queued command delivered', 30_000);
      const q = requests.find((x) => x.method === 'indicators.test');
      // The expiry the box gets is the one announced (to the millisecond the request was stamped).
      expect(Math.abs(Date.parse(q?.expiresAt ?? '') - Date.parse(m?.[1] ?? ''))).toBeLessThan(1000);
    } finally {
      await c.endAsync(true);
    }
  });
});
