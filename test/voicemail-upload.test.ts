import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAlsaCapture } from '../device/audio/alsa.js';
import { MemoryEventSink } from '../device/events.js';
import { VoicemailRecorder } from '../device/voicemail/recorder.js';
import { CHUNK_BYTES, VoicemailUploader } from '../device/voicemail/uploader.js';
import { sha256, VoicemailVault, wavOf } from '../device/voicemail/vault.js';
import { type StoredVoicemail, VoicemailReceiver } from '../fleet/voicemail/receiver.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { startTestBroker, type TestBroker } from './helpers/aedes.js';

const DEVICE = 'cb-vm-0001';
const topics = deviceTopics(DEVICE);

function tone(samples: number): Buffer {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(9000 * Math.sin(i / 7)), i * 2);
  return b;
}

describe('voicemail: recorded from ALSA, encrypted at rest, deleted only after the fleet confirms the checksum', () => {
  let dir: string;
  let broker: TestBroker;
  let box: MqttClient;
  let fleet: MqttClient;
  let dropped: number[];
  let dropOnce: Set<number>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'callbox-vm-'));
    dropped = [];
    dropOnce = new Set();
    broker = await startTestBroker({
      // Lose chosen chunks on their way to the fleet, once each (a flaky path).
      authorizeForward: (_client, packet) => {
        if (packet.topic !== topics.voicemailChunk) return packet;
        const index = (JSON.parse(packet.payload.toString()) as { index: number }).index;
        if (dropOnce.delete(index)) {
          dropped.push(index);
          return null;
        }
        return packet;
      },
    });
    box = await mqtt.connectAsync(broker.url, { clientId: DEVICE, protocolVersion: 4 });
    fleet = await mqtt.connectAsync(broker.url, { clientId: 'fleet-vm', protocolVersion: 4 });
  });

  afterEach(async () => {
    await box.endAsync();
    await fleet.endAsync();
    await broker.close();
  });

  it('records through the real alsa-capture from an ALSA file PCM and stores it encrypted', async () => {
    const pcm = tone(8000); // one second at 8 kHz
    writeFileSync(join(dir, 'caller.raw'), pcm);
    writeFileSync(
      join(dir, 'asound.conf'),
      `</usr/share/alsa/alsa.conf>\npcm.line {\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "${join(dir, 'caller.raw')}"\n format "raw"\n}\n`,
    );
    process.env.ALSA_CONFIG_PATH = join(dir, 'asound.conf');
    const vault = new VoicemailVault(join(dir, 'box'));
    const sink = new MemoryEventSink();
    const recorder = new VoicemailRecorder({ capture: loadAlsaCapture(), device: 'line', rate: 8000, vault, sink });
    const meta = await recorder.record({ callId: 'c-1', number: '+15551234567' }, 1000).done;
    delete process.env.ALSA_CONFIG_PATH;

    expect(meta.durationMs).toBe(1000);
    const wav = await vault.get(meta.voicemailId);
    expect(wav.subarray(44).equals(pcm)).toBe(true);
    expect(meta.sha256).toBe(sha256(wav));
    // At rest the file holds no plain audio.
    const raw = readFileSync(join(dir, 'box', `${meta.voicemailId}.vm`));
    expect(raw.includes(pcm.subarray(0, 64))).toBe(false);
    expect(sink.ofType('voicemail.recorded')).toEqual([
      {
        voicemailId: meta.voicemailId,
        callId: 'c-1',
        number: '+15551234567',
        durationMs: 1000,
        bytes: wav.length,
        sha256: meta.sha256,
        endedBy: 'max',
        empty: false,
      },
    ]);
  });

  it('uploads in chunks, resends only lost chunks, and deletes the local copy after the checksum is confirmed', async () => {
    const vault = new VoicemailVault(join(dir, 'box'));
    const wav = wavOf(tone(60_000), 8000); // ~120 KB: 4 chunks
    const meta = await vault.put(
      {
        voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c',
        callId: 'c-2',
        number: null,
        durationMs: 7500,
        recordedAt: new Date().toISOString(),
      },
      wav,
    );
    const stored: StoredVoicemail[] = [];
    const receiver = new VoicemailReceiver(fleet, join(dir, 'fleet'), (v) => {
      stored.push(v);
    });
    await receiver.start();
    const uploader = new VoicemailUploader({ client: box, topics, vault, ackTimeoutMs: 3000 });
    await uploader.start();
    dropOnce = new Set([1]);

    await uploader.kick();

    expect(Math.ceil(wav.length / CHUNK_BYTES)).toBe(4);
    expect(dropped).toEqual([1]);
    expect(stored).toHaveLength(1);
    expect(readFileSync(receiver.pathOf(DEVICE, meta.voicemailId)).equals(wav)).toBe(true);
    expect(stored[0]?.sha256).toBe(meta.sha256);
    expect(await vault.pending()).toEqual([]);
    uploader.stop();
    receiver.stop();
  });

  it('keeps the recording when the acknowledgement names another checksum', async () => {
    const vault = new VoicemailVault(join(dir, 'box'));
    const meta = await vault.put(
      {
        voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6d',
        callId: 'c-3',
        number: null,
        durationMs: 100,
        recordedAt: new Date().toISOString(),
      },
      wavOf(tone(800), 8000),
    );
    // A fleet that claims completion of different bytes.
    await fleet.subscribeAsync(topics.voicemailChunk, { qos: 1 });
    fleet.on('message', (topic) => {
      if (topic !== topics.voicemailChunk) return;
      fleet.publish(
        topics.voicemailAck,
        JSON.stringify({ v: 1, voicemailId: meta.voicemailId, state: 'complete', sha256: '0'.repeat(64), missing: [] }),
        { qos: 1 },
      );
    });
    const uploader = new VoicemailUploader({ client: box, topics, vault, ackTimeoutMs: 1000, maxRounds: 2 });
    await uploader.start();
    await uploader.kick();
    expect((await vault.pending()).map((m) => m.voicemailId)).toEqual([meta.voicemailId]);
    uploader.stop();
  });

  it('refuses a tampered file instead of uploading garbage', async () => {
    const vault = new VoicemailVault(join(dir, 'box'));
    const meta = await vault.put(
      {
        voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6e',
        callId: 'c-4',
        number: null,
        durationMs: 100,
        recordedAt: new Date().toISOString(),
      },
      wavOf(tone(800), 8000),
    );
    const path = join(dir, 'box', `${meta.voicemailId}.vm`);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const err = await vault.get(meta.voicemailId).catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.StoreCorrupt)).toBe(true);
    expect(readdirSync(join(dir, 'box')).filter((n) => n.endsWith('.vm'))).toHaveLength(1);
  });
});
