/**
 * Item 15: the fleet can run TLS only. With mqtt.port null there is no
 * plaintext listener for anyone: boxes and ops log in over TLS; the fleet's
 * own client uses a loopback listener where no other login is accepted.
 * The attack: plaintext logins of a box, a claim and an ops user wherever a
 * plaintext port answers. Before the fix the plaintext listener was always
 * on (and port null was not a valid configuration).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleetConfig } from '../../fleet/config.js';
import { Fleet } from '../../fleet/fleet.js';
import { OpsClient } from '../../fleet/ops-client.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newRequestId } from '../../shared/ids.js';
import { waitFor } from '../../shared/wait.js';
import { connectClient } from '../helpers/fleet.js';
import { sampleEvent } from '../helpers/store-conformance.js';
import { recordAttack } from './attacks.js';
import { claimWithId } from './helpers.js';

describe('security 15: TLS only', () => {
  let fleet: Fleet;
  let admin: OpsClient;
  let adminPassword = '';
  let ca: string;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-tls-only-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ].concat(['-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']),
      { stdio: 'ignore' },
    );
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const config = loadFleetConfig(
      undefined,
      {
        mqtt: {
          host: '127.0.0.1',
          port: null,
          tlsPort: 0,
          tlsCertFile: join(dir, 'cert.pem'),
          tlsKeyFile: join(dir, 'key.pem'),
          tlsCaFile: join(dir, 'cert.pem'),
          reconnectMs: 100,
        },
        store: { sqlitePath: join(dir, 'fleet.db') },
        ingest: { flushMs: 2 },
        http: { port: 0 },
      },
      {},
    );
    fleet = await Fleet.start(config, {
      onBootstrapAdmin: (_u, p) => {
        adminPassword = p;
      },
    });
    admin = await OpsClient.connect(`mqtts://127.0.0.1:${fleet.broker?.ports?.tls}`, 'admin', adminPassword, {
      mqtt: { ca },
    });
  });
  afterAll(async () => {
    await admin?.close();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has no plaintext listener but the fleet-only loopback one, and serves boxes over TLS', async () => {
    const ports = fleet.broker?.ports;
    expect(ports?.tcp).toBeNull();
    expect(ports?.internal).toEqual(expect.any(Number));
    const tlsUrl = `mqtts://127.0.0.1:${ports?.tls}`;
    const secret = 'label-SEC15-001-secret';
    await admin.call('boxes.register', { serial: 'SEC15-001', claimSecret: secret });
    const a = await claimWithId(tlsUrl, 'SEC15-001', secret, newRequestId(), 5000, { ca });
    if (a?.state !== 'approved') throw new Error(`claim over TLS was ${a?.state}`);
    const box = await connectClient(tlsUrl, { username: a.username, password: a.password, ca });
    const e = sampleEvent(a.deviceId, 1);
    await box.publishAsync(deviceTopics(a.deviceId).events, JSON.stringify(e), { qos: 1 });
    await waitFor(
      async () => (await fleet.store.countEvents({ deviceId: a.deviceId })) === 1,
      'the event over TLS',
      15_000,
    );
    box.end(true);

    let attempts = 0;
    let refused = 0;
    // Plaintext on the fleet's loopback listener: only the fleet's own login is taken.
    const internalUrl = `mqtt://127.0.0.1:${ports?.internal}`;
    for (const who of [
      { username: a.username, password: a.password },
      { username: 'claim:SEC15-001', password: secret },
      { username: 'ops:admin', password: adminPassword },
      { username: 'claim:SEC15-NEW', password: 'made-up-secret-1' },
    ]) {
      attempts++;
      await expect(connectClient(internalUrl, who), who.username).rejects.toThrow(/Not authorized|Bad username/i);
      refused++;
    }
    // Nothing answers plaintext MQTT on the TLS port: the connection closes without a CONNACK.
    attempts++;
    const plain = mqtt.connect(`mqtt://127.0.0.1:${ports?.tls}`, {
      username: a.username,
      password: a.password,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const outcome = await new Promise<string>((resolve) => {
      plain.once('connect', () => resolve('connected'));
      plain.once('close', () => resolve('closed'));
      plain.once('error', () => resolve('closed'));
    });
    plain.end(true);
    expect(outcome).toBe('closed');
    refused++;
    // The refused logins made nothing: no claim of the made-up serial was recorded.
    expect(await fleet.store.getBox('SEC15-NEW')).toBeUndefined();
    recordAttack({ item: 15, attack: 'plaintext MQTT logins when the fleet runs TLS only', attempts, refused });
  });
});
