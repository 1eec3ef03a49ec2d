/**
 * Item 11: patient data at rest at the fleet. The attack: another local
 * user (or a copied backup) reads the fleet's files. Before the fix the
 * SQLite stores were 0644, caller numbers sat in clear in both, voicemail
 * was a plain WAV and label claim secrets were PBKDF2 with 101 iterations.
 * Now the folder is 0700 and the files 0600, caller numbers and SMS texts
 * are sealed with AES-256-GCM under a key kept in its own file, voicemail
 * the same, and label secrets take 210 000 PBKDF2 iterations.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsFeature } from '../../fleet/alerts/feature.js';
import { OpsClient } from '../../fleet/ops-client.js';
import { voicemailFeature } from '../../fleet/voicemail/feature.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { waitFor } from '../../shared/wait.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';
import { opsUser } from './helpers.js';

const CALLER = '+15553330001';
const SMS_FROM = '+15553330002';

describe('security 11: patient data at rest', () => {
  let tf: TestFleet;
  let dataDir: string;
  beforeAll(async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    dataDir = join(mkdtempSync(join(tmpdir(), 'fleet-at-rest-')), 'data');
    tf = await startTestFleet(
      { store: { sqlitePath: join(dataDir, 'fleet.db') }, http: { port: 0 } },
      { features: [alertsFeature({ serveHttp: false }), voicemailFeature()] },
    );
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('keeps the files private and the numbers, texts and recordings sealed', async () => {
    const box = await provisionBox(tf, 'SEC11-001');
    const c = await connectClient(tf.url, { username: box.username, password: box.password });
    const t = deviceTopics(box.deviceId);
    const base = { v: 1, deviceId: box.deviceId, bootId: newBootId(), at: new Date().toISOString() };
    const events = [
      {
        ...base,
        id: newEventId(),
        seq: 1,
        type: 'call.incoming',
        body: { callId: 'c1', number: CALLER, withheld: false, inHours: true, repeatCaller: false, waiting: false },
      },
      {
        ...base,
        id: newEventId(),
        seq: 2,
        type: 'sms.received',
        body: { from: SMS_FROM, text: 'refill for Jane Doe please', at: new Date().toISOString() },
      },
    ];
    for (const e of events) await c.publishAsync(t.events, JSON.stringify(e), { qos: 1 });
    // A recording, uploaded in one chunk.
    const wav = Buffer.alloc(4000);
    for (let i = 0; i < wav.length; i++) wav[i] = (i * 7) % 251;
    const vmId = newEventId();
    await c.publishAsync(
      t.voicemailChunk,
      JSON.stringify({
        v: 1,
        voicemailId: vmId,
        index: 0,
        count: 1,
        totalBytes: wav.length,
        sha256: createHash('sha256').update(wav).digest('hex'),
        data: wav.toString('base64'),
      }),
      { qos: 1 },
    );
    await waitFor(
      async () => (await tf.fleet.store.countEvents({ deviceId: box.deviceId })) === 2,
      'the events',
      15_000,
    );
    const vmPath = join(tf.fleet.config.voicemail.dir, box.deviceId, `${vmId}.wav`);
    await waitFor(
      () => {
        try {
          return statSync(vmPath).isFile();
        } catch {
          return false;
        }
      },
      'the voicemail',
      15_000,
    );
    c.end(true);

    let attempts = 0;
    let refused = 0;
    // Modes: the folder 0700, every store file 0600 (the fleet db with the alert tables, its WAL and SHM), the key 0600.
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dataDir).filter((f) => /\.db/.test(f));
    expect(files).toContain('fleet.db');
    expect(files).not.toContain('fleet-alerts.db'); // the alert tables are in fleet.db, on its connection
    for (const f of files) {
      attempts++;
      expect(statSync(join(dataDir, f)).mode & 0o077, f).toBe(0);
      refused++;
    }
    const keyFile = join(dataDir, 'keys', 'fleet-data.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'keys')).mode & 0o777).toBe(0o700);

    // Raw bytes of every store file: no caller number, no SMS text, not the key.
    const key = readFileSync(keyFile, 'utf8').trim().split(/\s+/)[1] as string;
    for (const f of files) {
      attempts++;
      const raw = readFileSync(join(dataDir, f)).toString('latin1');
      for (const secret of ['5553330001', '5553330002', 'Jane Doe', key])
        expect(raw.includes(secret), `${f}: ${secret}`).toBe(false);
      refused++;
    }
    // The recording on disk is not the WAV; the fleet reads it back whole.
    attempts++;
    expect(readFileSync(vmPath).includes(wav.subarray(100, 600))).toBe(false);
    refused++;

    // Ops still see them (decrypted on read).
    const viewer = await opsUser(tf, 'sec11viewer', 'viewer');
    const v = await OpsClient.connect(tf.url, 'sec11viewer', viewer.password);
    const listed = await v.call('events.list', { box: 'SEC11-001' });
    await v.close();
    expect(
      listed
        .map((e) => (e.body as { number?: string; from?: string }).number ?? (e.body as { from?: string }).from)
        .sort(),
    ).toEqual([CALLER, SMS_FROM]);

    // Label secrets: PBKDF2 with 210 000 iterations in the Mosquitto form.
    const cred = await tf.fleet.store.getCredential('claim:SEC11-001');
    attempts++;
    expect(cred?.mosquittoHash).toMatch(/^\$7\$210000\$/);
    refused++;
    recordAttack({ item: 11, attack: 'read the fleet files as another user / from a backup', attempts, refused });
  });
});
