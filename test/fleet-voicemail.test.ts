/**
 * Voicemail through the real fleet: a provisioned box, authenticated through
 * the embedded broker's ACL, uploads a recording; the fleet's voicemail
 * feature stores it only after its checksum verified, and the box deletes
 * its copy only after the confirmation.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VoicemailUploader } from '../device/voicemail/uploader.js';
import { VoicemailVault, wavOf } from '../device/voicemail/vault.js';
import { voicemailFeature } from '../fleet/voicemail/feature.js';
import type { StoredVoicemail } from '../fleet/voicemail/receiver.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('voicemail upload to the fleet', () => {
  let tf: TestFleet;
  let box: MqttClient;
  let deviceId: string;
  const stored: StoredVoicemail[] = [];
  const vmDir = mkdtempSync(join(tmpdir(), 'fleet-vm-'));

  beforeAll(async () => {
    tf = await startTestFleet(
      { voicemail: { dir: vmDir } },
      { features: [voicemailFeature((v) => void stored.push(v))] },
    );
    const creds = await provisionBox(tf, 'VM-T0001');
    deviceId = creds.deviceId;
    box = await connectClient(tf.url, { username: creds.username, password: creds.password, clientId: deviceId });
  });

  afterAll(async () => {
    await box?.endAsync();
    await tf?.close();
  });

  it('stores the recording under the box, confirms its checksum, and the box then deletes it', async () => {
    const vault = new VoicemailVault(mkdtempSync(join(tmpdir(), 'box-vm-')));
    const pcm = Buffer.alloc(96_000);
    for (let i = 0; i < pcm.length; i += 2) pcm.writeInt16LE(Math.round(5000 * Math.sin(i / 11)), i);
    const wav = wavOf(pcm, 8000);
    const meta = await vault.put(
      {
        voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b70',
        callId: 'c-fleet-1',
        number: '+15551234567',
        durationMs: 6000,
        recordedAt: new Date().toISOString(),
      },
      wav,
    );
    const uploader = new VoicemailUploader({ client: box, topics: deviceTopics(deviceId), vault, ackTimeoutMs: 5000 });
    await uploader.start();
    await uploader.kick();
    uploader.stop();

    expect(stored.map((s) => [s.deviceId, s.voicemailId, s.sha256])).toEqual([
      [deviceId, meta.voicemailId, meta.sha256],
    ]);
    // Encrypted at rest: the file is not the WAV, the receiver gives it back whole.
    expect(readFileSync(join(vmDir, deviceId, `${meta.voicemailId}.wav`)).includes(wav.subarray(44, 1044))).toBe(false);
    const receiver = tf.fleet.feature<ReturnType<ReturnType<typeof voicemailFeature>>>('voicemail')?.receiver;
    expect((await receiver?.read(deviceId, meta.voicemailId))?.equals(wav)).toBe(true);
    expect(await vault.pending()).toEqual([]);
  });
});
