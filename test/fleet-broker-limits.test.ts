/**
 * The embedded broker's listeners (TCP with TCP_NODELAY, TLS, WebSocket)
 * and limits: payload size, topic depth, per-client message rate, connect
 * timeout; malformed payloads are counted and rejected by the fleet without
 * storing anything.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics } from '../shared/contract/topics.js';
import { closed, connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

describe('embedded broker listeners and limits', () => {
  let tf: TestFleet;
  let box: { deviceId: string; username: string; password: string };
  let cert: string;

  beforeAll(async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const certDir = mkdtempSync(join(tmpdir(), 'fleet-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(certDir, 'key.pem'),
        '-out',
        join(certDir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(certDir, 'cert.pem'), 'utf8');
    tf = await startTestFleet({
      mqtt: {
        tlsPort: 0,
        wsPort: 0,
        tlsCertFile: join(certDir, 'cert.pem'),
        tlsKeyFile: join(certDir, 'key.pem'),
        tlsCaFile: join(certDir, 'cert.pem'),
        maxPayloadBytes: 2048,
        ratePerSecond: 5,
        rateBurst: 20,
        connectTimeoutMs: 500,
      },
    });
    box = await provisionBox(tf, 'LIM-0001');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('serves MQTT over TLS (the CA is handed to boxes at provisioning) and over WebSocket', async () => {
    const ports = tf.fleet.broker?.ports;
    expect(ports?.tls).toBeGreaterThan(0);
    const secure = await connectClient(`mqtts://127.0.0.1:${ports?.tls}`, {
      username: box.username,
      password: box.password,
      ca: cert,
    });
    await secure.publishAsync(deviceTopics(box.deviceId).events, JSON.stringify(sampleEvent(box.deviceId, 1)), {
      qos: 1,
    });
    await expect.poll(() => tf.fleet.store.countEvents({ deviceId: box.deviceId })).toBe(1);
    secure.end(true);
    const ws = await connectClient(`ws://127.0.0.1:${ports?.ws}`, { username: box.username, password: box.password });
    expect(ws.connected).toBe(true);
    ws.end(true);
    const shown = await tf.admin.call('boxes.show', { box: 'LIM-0001' });
    expect(shown.box.claimState).toBe('approved');
  });

  it('disconnects a client sending a payload over the limit', async () => {
    const c = await connectClient(tf.url, { username: box.username, password: box.password });
    c.publish(deviceTopics(box.deviceId).events, 'x'.repeat(4096), { qos: 1 });
    expect(await closed(c)).toBe(true);
    expect((await tf.fleet.broker?.stats())?.tooLarge).toBeGreaterThanOrEqual(1);
  });

  it('refuses topics deeper than the limit', async () => {
    const c = await connectClient(tf.url, { username: box.username, password: box.password });
    c.publish(`${deviceTopics(box.deviceId).root}/a/b/c/d/e/f/g/h`, '{}', { qos: 1 });
    expect(await closed(c)).toBe(true);
  });

  it('disconnects a client publishing faster than its rate', async () => {
    const c = await connectClient(tf.url, { username: box.username, password: box.password });
    for (let i = 0; i < 60; i++) c.publish(deviceTopics(box.deviceId).telemetry, '{}', { qos: 0 });
    expect(await closed(c)).toBe(true);
    expect((await tf.fleet.broker?.stats())?.rateLimited).toBeGreaterThanOrEqual(1);
  });

  it('closes a connection that never sends CONNECT', async () => {
    const sock = createConnection({ port: Number(new URL(tf.url).port), host: '127.0.0.1' });
    const started = Date.now();
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('counts and rejects malformed payloads without storing them or dropping the box', async () => {
    const before = tf.fleet.metrics().rejectedMessages;
    // Another box: the rate is per identity, and the test above spent this box's.
    const other = await provisionBox(tf, 'LIM-0002');
    const c = await connectClient(tf.url, { username: other.username, password: other.password });
    const t = deviceTopics(other.deviceId);
    await c.publishAsync(t.events, '{"v":1,"type":"panic.pressed"', { qos: 1 });
    await c.publishAsync(t.telemetry, JSON.stringify({ v: 1, at: 'yesterday' }), { qos: 1 });
    await c.publishAsync(t.status, JSON.stringify({ v: 2, state: 'online' }), { qos: 1 });
    await expect.poll(() => tf.fleet.metrics().rejectedMessages - before).toBe(3);
    expect(c.connected).toBe(true);
    expect(await tf.fleet.store.countEvents({ deviceId: other.deviceId })).toBe(0);
    c.end(true);
  });
});
