/**
 * `npm run bench:voicemail [-- --minutes 3 --runs 3 --rates 8000,16000]`
 *
 * A voicemail's way from the box to the fleet on loopback: a real fleet (embedded broker, SQLite, the
 * voicemail feature; triage off, so the figure is the upload alone) and a provisioned box whose real
 * vault and uploader (device/voicemail) send a recording of `minutes` minutes in chunks over MQTT. Timed
 * from the end of the recording (the vault's durable, encrypted write done) to the fleet's acknowledgement
 * naming the checksum it verified; then the bytes each side keeps per minute of audio (the box's encrypted
 * vault file, the fleet's sealed file). The audio is a voice-band signal with noise (its content does not
 * change the figures: nothing is compressed).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import mqtt from 'mqtt';

process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { loadFleetConfig } = await import('../fleet/config.js');
const { Fleet } = await import('../fleet/fleet.js');
const { voicemailFeature } = await import('../fleet/voicemail/feature.js');
const { VoicemailUploader } = await import('../device/voicemail/uploader.js');
const { VoicemailVault, wavOf } = await import('../device/voicemail/vault.js');
const { deviceTopics } = await import('../shared/contract/topics.js');
const { waitFor } = await import('../shared/wait.js');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const MINUTES = Number(arg('minutes', '3'));
const RUNS = Math.max(1, Number(arg('runs', '3')));
const RATES = arg('rates', '8000,16000').split(',').map(Number);

/** Bytes of every file under dir whose name passes `keep`. */
function bytesUnder(dir: string, keep: (name: string) => boolean): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && keep(e.name)) n += statSync(join(e.parentPath, e.name)).size;
  }
  return n;
}

/** 16-bit mono PCM: a voice-band tone that moves, with noise. */
function audio(seconds: number, rate: number): Buffer {
  const pcm = Buffer.alloc(seconds * rate * 2);
  for (let i = 0; i < seconds * rate; i++) {
    const t = i / rate;
    const v = 6000 * Math.sin(2 * Math.PI * (220 + 80 * Math.sin(t)) * t) + (Math.random() - 0.5) * 1500;
    pcm.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v))), i * 2);
  }
  return pcm;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const root = mkdtempSync(join(tmpdir(), 'bench-voicemail-'));
const config = loadFleetConfig(
  undefined,
  { data: { dir: join(root, 'fleet') }, mqtt: { port: 0, host: '127.0.0.1' }, http: { port: 0 } },
  {},
);
const fleet = await Fleet.start(config, { features: [voicemailFeature()], onBootstrapAdmin: () => undefined });
const creds = await fleet.registry.provision('bench', 'VMBENCH-0001');
const client = await mqtt.connectAsync(fleet.brokerUrl, {
  username: creds.deviceId,
  password: creds.password,
  clientId: creds.deviceId,
  protocolVersion: 4,
});
const topics = deviceTopics(creds.deviceId);
const fleetVoicemailDir = isAbsolute(config.voicemail.dir)
  ? config.voicemail.dir
  : join(config.data.dir, config.voicemail.dir);

console.log(
  `voicemail upload on loopback: ${MINUTES} min recordings, ${RUNS} runs per rate; ${cpus().length} cores, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log('rate      | WAV bytes | upload median (min-max)   | box bytes/min | fleet bytes/min');
for (const rate of RATES) {
  const pcm = audio(MINUTES * 60, rate);
  const times: number[] = [];
  let boxPerMin = 0;
  let fleetPerMin = 0;
  let wavBytes = 0;
  for (let run = 0; run < RUNS; run++) {
    const vault = new VoicemailVault(join(root, `box-${rate}-${run}`));
    const voicemailId = randomUUID();
    const meta = await vault.put(
      {
        voicemailId,
        callId: `bench-${run}`,
        number: '+15550100000',
        durationMs: MINUTES * 60_000,
        recordedAt: new Date().toISOString(),
      },
      wavOf(pcm, rate),
    );
    wavBytes = meta.bytes;
    // The recording has ended and is durable on the box: the clock starts.
    boxPerMin = bytesUnder(join(root, `box-${rate}-${run}`), (n) => n.endsWith('.vm')) / MINUTES;
    const uploader = new VoicemailUploader({ client, topics, vault, ackTimeoutMs: 30_000 });
    await uploader.start();
    const t0 = performance.now();
    await uploader.kick();
    // The box deletes its copy only after the fleet's acknowledgement named the checksum it verified.
    await waitFor(async () => (await vault.pending()).length === 0, 'the fleet confirmed the checksum', 120_000);
    times.push(performance.now() - t0);
    uploader.stop();
    fleetPerMin = bytesUnder(fleetVoicemailDir, (n) => n === `${voicemailId}.wav`) / MINUTES;
  }
  const upload = `${median(times).toFixed(0)} ms (${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms)`;
  console.log(
    `${`${rate} Hz`.padEnd(9)} | ${String(wavBytes).padStart(9)} | ${upload.padEnd(25)} | ${String(Math.round(boxPerMin)).padStart(13)} | ${String(Math.round(fleetPerMin)).padStart(15)}`,
  );
}
await client.endAsync();
await fleet.stop();
rmSync(root, { recursive: true, force: true });
