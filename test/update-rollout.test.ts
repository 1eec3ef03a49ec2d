/**
 * Over-the-air updates on one machine, end to end: a fleet (embedded broker on an ephemeral port, SQLite) and
 * three real box processes, each installed as /opt/callbox would be (releases/<version>/, current -> releases/…,
 * guard.mjs outside the releases) under temp folders, each under a small supervisor that restarts it as systemd
 * does (ExecStartPre guard, Restart=always, RestartPreventExitStatus=78), each with its own modem emulator on a pty.
 *
 * The releases are small synthetic trees, not the full node_modules tarball: dist/device/main.js starts this
 * checkout's box program (through tsx), dist/device/guard.mjs is the real guard, share/payload.bin is 1.5 MB of
 * random bytes so a download takes ~100 ranges. They go through the same code paths as a real release: made with a
 * MANIFEST.json holding the sha256 of every file, signed with Ed25519, uploaded with `fleet release upload`,
 * rolled out with `fleet release rollout …`, downloaded over MQTT, verified, unpacked by ReleaseSlots, switched
 * with the `current` link, confirmed by the box's health checks or rolled back by the guard.
 *
 *  1. v2.0.0 rolled out to 1 of 3 (stages 33%, 100%), then to all; the first box is SIGKILLed in the middle of its
 *     download and resumes from what it had on disk (bytes fetched after the restart < the tarball's size).
 *  2. a bad v3.0.0 (its program cannot reach the modem, so its health check fails) is installed on the first box,
 *     rolled back by the guard after the deadline, reported `rolled_back` with the reason; the rollout pauses by
 *     itself and the other boxes are never offered it.
 *  3. refusals: a release signed with an untrusted key and one with a file changed after signing are refused by
 *     the fleet; an older release is refused by the box; a stored release whose file was changed (and whose outer
 *     checksum was changed to match) is refused by the box's check of the signed manifest.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import { type UpdatesFeature, updatesFeature } from '../fleet/updates/feature.js';
import { includedCount, rolloutOrder } from '../fleet/updates/rollouts.js';
import type { RolloutStatus } from '../shared/contract/update.js';
import { generateSigningKey, signManifest } from '../shared/release-signature.js';
import { waitFor } from '../shared/wait.js';
import { runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { Supervisor } from './helpers/supervisor.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'callbox-ota-'));
const key = generateSigningKey();
const otherKey = generateSigningKey();
const pubFile = join(work, 'release-signing.pub');
writeFileSync(pubFile, key.publicPem);
const tsxLoader = pathToFileURL(join(repo, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const payload = randomBytes(1_500_000);

function sha(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out;
}

/** A synthetic device release, signed; `bad`: its program cannot reach the modem (fails its health check). */
function makeRelease(
  version: string,
  o: { bad?: boolean; signWith?: string; afterSigning?: (dir: string) => void } = {},
): string {
  const name = `callbox-device-${version}-linux-${process.arch}`;
  const dir = join(work, 'src', `${version}-${randomBytes(3).toString('hex')}`, name);
  mkdirSync(join(dir, 'dist', 'device'), { recursive: true });
  mkdirSync(join(dir, 'share'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'callbox-device', version, type: 'module' })}\n`);
  writeFileSync(
    join(dir, 'dist', 'device', 'main.js'),
    [
      `// Synthetic test release ${version}: runs the box program of the checkout it was made from.`,
      ...(o.bad ? ["process.env.CALLBOX_DEVICE__MODEM__PATH = '/dev/callbox-release-lost-its-modem';"] : []),
      `const { main } = await import(${JSON.stringify(pathToFileURL(join(repo, 'device', 'main.ts')).href)});`,
      'await main(process.argv);',
      '',
    ].join('\n'),
  );
  copyFileSync(join(repo, 'device', 'update', 'guard.mjs'), join(dir, 'dist', 'device', 'guard.mjs'));
  writeFileSync(join(dir, 'share', 'payload.bin'), Buffer.concat([payload, Buffer.from(version)]));
  const files: Record<string, string> = {};
  for (const f of listFiles(dir).sort()) files[f] = sha(readFileSync(join(dir, f)));
  const manifest = Buffer.from(
    `${JSON.stringify({ program: 'device', version, arch: process.arch, platform: 'linux', node: process.versions.node, files }, null, 2)}\n`,
  );
  writeFileSync(join(dir, 'MANIFEST.json'), manifest);
  writeFileSync(join(dir, 'MANIFEST.json.sig'), `${signManifest(manifest, o.signWith ?? key.privatePem)}\n`);
  o.afterSigning?.(dir);
  const tarball = join(work, `${name}-${randomBytes(3).toString('hex')}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', join(dir, '..'), name]);
  return tarball;
}

interface TestBox {
  serial: string;
  root: string;
  dataDir: string;
  sup: Supervisor;
  modem: ModemEmulator;
  deviceId: string;
}

let tf: TestFleet;
let feature: UpdatesFeature;
const boxes: TestBox[] = [];
/** Boxes in rollout order (the first is the one a 33% stage includes). */
let ordered: TestBox[] = [];

async function cli(...args: string[]) {
  return runFleetCli(tf.url, ['--user', 'admin', '--json', ...args], tf.adminPassword);
}

async function status(): Promise<RolloutStatus> {
  const r = await cli('release', 'rollout', 'status');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as RolloutStatus;
}

const running = (b: TestBox) => readlinkSync(join(b.root, 'current')).split('/').pop();
const boxLogs = () => boxes.map((b) => `---- ${b.serial}\n${b.sup.log.slice(-6000)}`).join('\n');

beforeAll(async () => {
  tf = await startTestFleet(
    { updates: { publicKeyFiles: [pubFile] }, ops: { commandTimeoutMs: 5000 } },
    { features: [updatesFeature()] },
  );
  const f = tf.fleet.feature<UpdatesFeature>('updates');
  if (!f) throw new Error('no updates feature');
  feature = f;
  const v1 = makeRelease('1.0.0');
  for (let i = 1; i <= 3; i++) {
    const serial = `CB-OTA-000${i}`;
    const secret = `ota-label-secret-000${i}`;
    await tf.admin.call('boxes.register', { serial, claimSecret: secret });
    const base = join(work, `box${i}`);
    const root = join(base, 'opt', 'callbox');
    const dataDir = join(base, 'var', 'lib', 'callbox');
    mkdirSync(join(root, 'releases', '1.0.0'), { recursive: true });
    mkdirSync(dataDir, { recursive: true });
    // The first install, as docs/INSTALL.md does it: unpack, link, copy the guard out of the release.
    execFileSync('tar', ['-xzf', v1, '-C', join(root, 'releases', '1.0.0'), '--strip-components=1']);
    symlinkSync(join('releases', '1.0.0'), join(root, 'current'));
    copyFileSync(join(root, 'releases', '1.0.0', 'dist', 'device', 'guard.mjs'), join(root, 'guard.mjs'));
    const modem = new ModemEmulator({ vendor: 'generic' });
    const { path } = await modem.start();
    const configFile = join(base, 'device.yaml');
    writeFileSync(
      configFile,
      [
        'box:',
        `  serial: ${serial}`,
        `  claimSecret: ${secret}`,
        `  dataDir: ${dataDir}`,
        'mqtt:',
        `  url: ${tf.url}`,
        '  reconnectMinMs: 100',
        '  reconnectMaxMs: 1000',
        '  claimRetryS: 1',
        '  requestTimeoutMs: 5000',
        'modem:',
        `  path: ${path}`,
        'io:',
        '  board: virtual',
        'update:',
        `  root: ${root}`,
        `  publicKeyFiles: [${pubFile}]`,
        '  confirmWithinS: 35',
        '  chunkBytes: 16384',
        '',
      ].join('\n'),
    );
    const sup = new Supervisor({
      name: serial,
      root,
      dataDir,
      configFile,
      nodeArgs: ['--import', tsxLoader],
      env: { CALLBOX_LOG_LEVEL: 'info' },
    });
    sup.start();
    boxes.push({ serial, root, dataDir, sup, modem, deviceId: '' });
  }
  await waitFor(
    async () => {
      const rows = await tf.admin.call('boxes.list', {});
      for (const b of boxes) b.deviceId = rows.find((r) => r.serial === b.serial && r.online)?.deviceId ?? '';
      return boxes.every((b) => b.deviceId);
    },
    'three boxes online',
    { timeoutMs: 90_000, intervalMs: 250 },
  ).catch((e) => {
    throw new Error(`${(e as Error).message}\n${boxLogs()}`);
  });
  const order = rolloutOrder(boxes.map((b) => b.deviceId));
  ordered = order.map((id) => boxes.find((b) => b.deviceId === id) as TestBox);
}, 150_000);

afterAll(async () => {
  await Promise.all(boxes.map((b) => b.sup.stop()));
  for (const b of boxes) await b.modem.stop().catch(() => undefined);
  await tf?.close();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('over-the-air updates with three box processes', () => {
  it('rolls v2 out to 1 of 3, resumes a download cut by SIGKILL, then all; the guard is kept outside the releases', async () => {
    expect(includedCount(3, 33)).toBe(1);
    const up = await cli('release', 'upload', makeRelease('2.0.0'));
    expect(up.code, up.err).toBe(0);
    const total = (JSON.parse(up.out) as { totalBytes: number }).totalBytes;

    // The first box is killed once it has fetched 40% of the tarball.
    const first = ordered[0] as TestBox;
    const key2 = `${first.deviceId} 2.0.0`;
    let servedAtKill = 0;
    feature.rollouts!.onServe = (deviceId, version, offset, bytes, size) => {
      if (servedAtKill || deviceId !== first.deviceId || version !== '2.0.0' || offset + bytes < size * 0.4) return;
      servedAtKill = feature.rollouts!.served.get(key2) ?? 0;
      first.sup.kill('SIGKILL');
    };
    const start = await cli('release', 'rollout', 'start', '2.0.0', '--stages', '33,100');
    expect(start.code, start.err).toBe(0);
    const rolloutId = (JSON.parse(start.out) as { id: string }).id;

    const s1 = await waitFor(
      async () => {
        const s = await status();
        return s.boxes.find((b) => b.deviceId === first.deviceId)?.state === 'healthy' && s;
      },
      'the first box healthy on 2.0.0',
      { timeoutMs: 120_000, intervalMs: 250 },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${boxLogs()}`);
    });
    // Resumed: what was fetched after the SIGKILL is less than the whole tarball.
    expect(servedAtKill).toBeGreaterThan(total * 0.4 - 1);
    expect(first.sup.exits.some((e) => e.signal === 'SIGKILL')).toBe(true);
    const refetched = (feature.rollouts!.served.get(key2) ?? 0) - servedAtKill;
    expect(refetched).toBeLessThan(total);
    expect(refetched).toBeLessThanOrEqual(total - servedAtKill + 16384);
    expect(first.sup.log).toMatch(/resuming the update download/);
    console.log(
      `download resume: tarball ${total} bytes, ${servedAtKill} served before SIGKILL, ${refetched} fetched after the restart`,
    );
    // 1 of 3: the others were not offered and still run 1.0.0.
    expect(s1.boxes.filter((b) => b.included).map((b) => b.deviceId)).toEqual([first.deviceId]);
    expect(s1.boxes.filter((b) => b.deviceId !== first.deviceId).map((b) => b.state)).toEqual([null, null]);
    expect(running(first)).toBe('2.0.0');
    expect(ordered.slice(1).map(running)).toEqual(['1.0.0', '1.0.0']);

    const adv = await cli('release', 'rollout', 'advance', rolloutId);
    expect(adv.code, adv.err).toBe(0);
    const done = await waitFor(
      async () => {
        const s = await status();
        return s.rollout.state === 'done' && s;
      },
      'every box healthy on 2.0.0',
      { timeoutMs: 120_000, intervalMs: 250 },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${boxLogs()}`);
    });
    expect(done.boxes.map((b) => [b.state, b.running])).toEqual([
      ['healthy', '2.0.0'],
      ['healthy', '2.0.0'],
      ['healthy', '2.0.0'],
    ]);
    for (const b of boxes) {
      expect(running(b)).toBe('2.0.0');
      const st = JSON.parse(readFileSync(join(b.dataDir, 'update-state.json'), 'utf8'));
      expect(st).toMatchObject({ pending: null, last: { version: '2.0.0', outcome: 'committed', reported: true } });
      // The previous release stays as the fallback; the guard was refreshed from the confirmed release.
      expect(readdirSync(join(b.root, 'releases')).sort()).toEqual(['1.0.0', '2.0.0']);
      expect(readFileSync(join(b.root, 'guard.mjs'), 'utf8')).toBe(
        readFileSync(join(repo, 'device', 'update', 'guard.mjs'), 'utf8'),
      );
    }
  }, 260_000);

  it('rolls a bad v3 back by itself on the first box and pauses the rollout; the others are never offered it', async () => {
    const first = ordered[0] as TestBox;
    const up = await cli('release', 'upload', makeRelease('3.0.0', { bad: true }));
    expect(up.code, up.err).toBe(0);
    const start = await cli('release', 'rollout', 'start', '3.0.0', '--stages', '33,100', '--max-failures', '1');
    expect(start.code, start.err).toBe(0);
    const paused = await waitFor(
      async () => {
        const s = await status();
        return s.rollout.state === 'paused' && s;
      },
      'the rollout paused by itself',
      { timeoutMs: 150_000, intervalMs: 250 },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${boxLogs()}`);
    });
    const b0 = paused.boxes.find((b) => b.deviceId === first.deviceId);
    expect(b0?.state).toBe('rolled_back');
    expect(b0?.running).toBe('2.0.0');
    expect(b0?.reason).toMatch(/release 3\.0\.0 did not confirm its health before .*modem does not answer AT/);
    expect(paused.rollout.pausedReason).toMatch(/1 of 1 box\(es\) offered failed/);
    expect(paused.boxes.filter((b) => b.deviceId !== first.deviceId).map((b) => b.state)).toEqual([null, null]);
    expect(running(first)).toBe('2.0.0');
    expect(ordered.slice(1).map(running)).toEqual(['2.0.0', '2.0.0']);
    expect(first.sup.guardOutput.join('\n')).toMatch(/rolled back: release 3\.0\.0 did not confirm its health/);
    // It ran 3.0.0 (exit 1 at the deadline), then 2.0.0 again.
    expect(first.sup.exits.some((e) => e.code === 1)).toBe(true);
  }, 200_000);

  it('refuses a bad signature and a modified file (fleet), an older release and a tampered stored one (box)', async () => {
    const badSig = await cli('release', 'upload', makeRelease('4.0.0', { signWith: otherKey.privatePem }));
    expect(badSig.code).not.toBe(0);
    expect(badSig.err).toMatch(/release signature does not match MANIFEST\.json for any trusted key/);
    const modified = await cli(
      'release',
      'upload',
      makeRelease('4.0.1', {
        afterSigning: (dir) => writeFileSync(join(dir, 'dist', 'device', 'main.js'), 'console.log("owned")\n'),
      }),
    );
    expect(modified.code).not.toBe(0);
    expect(modified.err).toMatch(/dist\/device\/main\.js does not match its sha256 in the signed manifest/);
    const releases = JSON.parse((await cli('release', 'list')).out) as { version: string; state: string }[];
    expect(releases.filter((r) => r.state === 'ready').map((r) => r.version)).toEqual(['3.0.0', '2.0.0']);

    // An older release offered to a box: refused by the box with the reason.
    const older = ordered[1] as TestBox;
    expect((await cli('release', 'upload', makeRelease('1.0.0'))).code).toBe(0);
    const r1 = await cli('release', 'rollout', 'start', '1.0.0', '--boxes', older.serial, '--stages', '100');
    expect(r1.code, r1.err).toBe(0);
    const s1 = await waitFor(
      async () => {
        const s = await status();
        return s.boxes[0]?.state === 'failed' && s.rollout.state === 'paused' && s;
      },
      'the older release refused',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(s1.boxes[0]?.reason).toMatch(/update refused: release 1\.0\.0 is not newer than the running 2\.0\.0/);
    expect(s1.rollout.pausedReason).toMatch(/1 of 1 box\(es\) offered failed/);

    // A stored release changed behind the fleet's back (and its outer checksum with it): the box's check of
    // every file against the signed manifest refuses it, and nothing changes on the box.
    const target = ordered[2] as TestBox;
    expect((await cli('release', 'upload', makeRelease('4.1.0'))).code).toBe(0);
    const dirs = join(work, 'tamper');
    mkdirSync(dirs);
    const stored = join(tf.dir, 'releases', '4.1.0.tar.gz');
    execFileSync('tar', ['-xzf', stored, '-C', dirs]);
    const [top] = readdirSync(dirs);
    writeFileSync(join(dirs, top as string, 'share', 'payload.bin'), 'not the signed payload');
    execFileSync('tar', ['-czf', stored, '-C', dirs, top as string]);
    const rel = await tf.fleet.store.getRelease('4.1.0');
    const bytes = readFileSync(stored);
    await tf.fleet.store.putRelease({
      ...rel!,
      sha256: sha(bytes),
      totalBytes: bytes.length,
      receivedBytes: bytes.length,
    });
    const r2 = await cli('release', 'rollout', 'start', '4.1.0', '--boxes', target.serial, '--stages', '100');
    expect(r2.code, r2.err).toBe(0);
    const s2 = await waitFor(
      async () => {
        const s = await status();
        return s.boxes[0]?.state === 'failed' && s.rollout.state === 'paused' && s;
      },
      'the tampered release refused',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(s2.boxes[0]?.reason).toMatch(/share\/payload\.bin does not match its sha256 in the signed manifest/);
    expect(running(target)).toBe('2.0.0');
    expect(existsSync(join(target.root, 'releases', '4.1.0'))).toBe(false);
  }, 150_000);
});
