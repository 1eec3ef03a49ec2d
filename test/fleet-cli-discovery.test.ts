/**
 * The CLI finds a local fleet by itself: the fleet writes <data.dir>/connection.json (URL, ops user, password file,
 * never the password; 0600) and the CLI reads it when no --url/CALLBOX_OPS_URL is given. What answers at a URL
 * and is not a Callbox fleet is named within about a second; every message carries one hint, not two.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveTarget, runCli } from '../fleet/cli.js';
import { CONNECTION_FILE } from '../fleet/connection-file.js';
import { waitFor } from '../shared/wait.js';
import { startTestBroker } from './helpers/aedes.js';

const repo = join(import.meta.dirname, '..');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const t0 = Date.now();
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env,
  });
  return { code, out, err, ms: Date.now() - t0 };
}

describe('the CLI finds the local fleet', () => {
  const dirs: string[] = [];
  let fleet: ChildProcess | undefined;
  afterAll(async () => {
    if (fleet && fleet.exitCode === null) {
      fleet.kill('SIGTERM');
      await new Promise((r) => fleet?.once('exit', r));
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reads connection.json from the data folder: no URL, no password given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-discovery-'));
    dirs.push(dir);
    const data = join(dir, 'data');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('CALLBOX_')) delete env[k];
    fleet = spawn(process.execPath, ['--import', 'tsx', 'fleet/main.ts'], {
      cwd: repo,
      env: {
        ...env,
        CALLBOX_FLEET__DATA__DIR: data,
        CALLBOX_FLEET__MQTT__PORT: '0',
        CALLBOX_FLEET__MQTT__HOST: '127.0.0.1',
        CALLBOX_FLEET__HTTP__PORT: '0',
        CALLBOX_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    fleet.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const file = join(data, CONNECTION_FILE);
    await waitFor(() => existsSync(file) || fleet?.exitCode != null, 'connection.json', {
      timeoutMs: 90_000,
      intervalMs: 50,
    });
    expect(fleet.exitCode, stderr).toBeNull();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const conn = JSON.parse(readFileSync(file, 'utf8'));
    expect(conn).toMatchObject({
      service: 'callbox-fleet',
      user: 'admin',
      passwordFile: join(data, 'fleet-admin.secret'),
    });
    expect(conn.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const password = readFileSync(join(data, 'fleet-admin.secret'), 'utf8').trim();
    expect(readFileSync(file, 'utf8')).not.toContain(password);

    const byFlag = await cli(['--data-dir', data, 'boxes', 'list']);
    expect(byFlag.err).toBe('');
    expect(byFlag.code).toBe(0);
    expect(byFlag.out).toMatch(/\(none\)/);
    const byEnv = await cli(['--json', 'clinics', 'list'], { CALLBOX_FLEET__DATA__DIR: data });
    expect(byEnv.code).toBe(0);
    expect(JSON.parse(byEnv.out)).toEqual([]);
  }, 120_000);

  it('resolves flags, then CALLBOX_OPS_*, then connection.json, then defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-discovery-'));
    dirs.push(dir);
    const conn = {
      service: 'callbox-fleet',
      url: 'mqtt://127.0.0.1:4242',
      user: 'root',
      passwordFile: '/x/pw',
      dataDir: dir,
      pid: 1,
      startedAt: '',
    };
    writeFileSync(join(dir, CONNECTION_FILE), JSON.stringify(conn));
    expect(resolveTarget({ dataDir: dir }, {})).toMatchObject({
      url: 'mqtt://127.0.0.1:4242',
      user: 'root',
      passwordFile: '/x/pw',
    });
    expect(resolveTarget({}, { CALLBOX_FLEET__DATA__DIR: dir })).toMatchObject({ url: 'mqtt://127.0.0.1:4242' });
    expect(resolveTarget({ dataDir: dir }, { CALLBOX_OPS_URL: 'mqtt://h:1' })).toMatchObject({
      url: 'mqtt://h:1',
      user: 'admin',
      passwordFile: join(dir, 'fleet-admin.secret'),
    });
    expect(resolveTarget({ dataDir: dir, url: 'mqtt://f:2', user: 'u', passwordFile: 'p' }, {})).toMatchObject({
      url: 'mqtt://f:2',
      user: 'u',
      passwordFile: 'p',
    });
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(resolveTarget({ dataDir: empty }, {})).toMatchObject({ url: 'mqtt://127.0.0.1:1883', user: 'admin' });
    writeFileSync(join(empty, CONNECTION_FILE), '{"hello":1}');
    expect(() => resolveTarget({ dataDir: empty }, {})).toThrow(
      /connection\.json is not a Callbox fleet connection file/,
    );
  });

  it('names the URL within about a second when the broker there has no fleet behind it', async () => {
    const broker = await startTestBroker();
    try {
      const r = await cli(['--url', broker.url, 'boxes', 'list'], { CALLBOX_OPS_PASSWORD: 'x' });
      expect(r.code).toBe(5);
      expect(r.err).toContain(`${broker.url} is not a Callbox fleet`);
      expect(r.ms).toBeLessThan(3000);
      expect(r.err.match(/check --url/g)).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });

  it('says the broker refused the credentials, with one hint', async () => {
    const broker = await startTestBroker({
      authenticate: (_c, _u, _p, done) => done(Object.assign(new Error('no'), { returnCode: 4 }) as never, false),
    });
    try {
      const r = await cli(['--url', broker.url, 'boxes', 'list'], { CALLBOX_OPS_PASSWORD: 'x' });
      expect(r.code).toBe(4);
      expect(r.err).toMatch(new RegExp(`the broker at ${broker.url} refused ops:admin`));
      expect(r.err.match(/check --user/g)).toHaveLength(1);
      const down = await cli(['--url', 'mqtt://127.0.0.1:1', 'boxes', 'list'], { CALLBOX_OPS_PASSWORD: 'x' });
      expect(down.code).toBe(5);
      expect(down.err.match(/is the fleet running/g)).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });
});
