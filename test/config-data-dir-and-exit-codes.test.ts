/**
 * One data folder for the fleet (data.dir: relative file settings live under it), and the same documented exit
 * code (78, EX_CONFIG) from both programs when their configuration is wrong, so systemd stops instead of looping.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDeviceConfig } from '../device/config.js';
import { loadFleetConfig } from '../fleet/config.js';
import { EXIT_CONFIG } from '../shared/errors.js';

const repo = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'callbox-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function exitOf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; err: string }> {
  return new Promise((r) => {
    const child = execFile(
      process.execPath,
      args,
      { cwd: repo, env: { ...process.env, ...env }, timeout: 60_000 },
      (_e, _o, err) => r({ code: child.exitCode, err }),
    );
  });
}

describe('the fleet data folder', () => {
  it('puts the store, the admin password and voicemail under data.dir by default', () => {
    const c = loadFleetConfig(undefined, { data: { dir: '/srv/fleet' } }, {});
    expect(c.store.sqlitePath).toBe('/srv/fleet/fleet.db');
    expect(c.ops.bootstrapPasswordFile).toBe('/srv/fleet/fleet-admin.secret');
    expect(c.voicemail.dir).toBe('/srv/fleet/voicemail');
  });

  it('keeps absolute settings where they are and takes the folder from the environment', () => {
    const c = loadFleetConfig(
      undefined,
      { store: { sqlitePath: '/elsewhere/f.db' } },
      {
        CALLBOX_FLEET__DATA__DIR: '/var/lib/callbox-fleet',
      },
    );
    expect(c.store.sqlitePath).toBe('/elsewhere/f.db');
    expect(c.voicemail.dir).toBe('/var/lib/callbox-fleet/voicemail');
  });

  it('defaults to ./var in development, as before', () => {
    const c = loadFleetConfig(undefined, undefined, {});
    expect(c.store.sqlitePath).toBe(join('var', 'fleet.db'));
    expect(c.ops.bootstrapPasswordFile).toBe(join('var', 'fleet-admin.secret'));
  });
});

describe('a wrong configuration stops both programs with exit code 78', () => {
  it('the box', async () => {
    const file = join(dir, 'device.yaml');
    writeFileSync(file, 'mqtt:\n  keepaliveS: -5\n');
    const r = await exitOf([join(repo, 'device', 'bin', 'callbox-device.js'), '--config', file]);
    expect(r.code, r.err).toBe(EXIT_CONFIG);
    expect(r.err).toMatch(/mqtt/);
  }, 70_000);

  it('the fleet', async () => {
    const file = join(dir, 'fleet.yaml');
    writeFileSync(file, 'mqtt:\n  port: 70000\n');
    const r = await exitOf(['--import', 'tsx', join(repo, 'fleet', 'main.ts'), '--config', file]);
    expect(r.code, r.err).toBe(EXIT_CONFIG);
    expect(r.err).toMatch(/mqtt\/port: got 70000/);
  }, 70_000);
});

describe('fatal configuration errors found later exit 78 too', () => {
  it('the box with no configuration at all refuses to start, saying what to give it', async () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('CALLBOX_DEVICE')) delete env[k];
    const r = await new Promise<{ code: number | null; err: string }>((res) => {
      const child = execFile(
        process.execPath,
        [join(repo, 'device', 'bin', 'callbox-device.js')],
        { cwd: repo, env, timeout: 60_000 },
        (_e, _o, err) => res({ code: child.exitCode, err }),
      );
    });
    expect(r.code, r.err).toBe(EXIT_CONFIG);
    expect(r.err).toMatch(/no configuration: give --config FILE \(or CALLBOX_DEVICE_CONFIG=FILE\)/);
  }, 70_000);

  it('a broker URL is checked as configuration (scheme, host, port)', async () => {
    const file = join(dir, 'device-url.yaml');
    writeFileSync(file, 'mqtt:\n  url: mqtt//192.168.1.50:1883\n');
    const r = await exitOf([join(repo, 'device', 'bin', 'callbox-device.js'), '--config', file]);
    expect(r.code, r.err).toBe(EXIT_CONFIG);
    expect(r.err).toMatch(/\/mqtt\/url: got "mqtt\/\/192\.168\.1\.50:1883", expected string format broker-url/);
    // The link's TLS rule is configuration too: plain MQTT off loopback is refused at load, address intact.
    expect(() => loadDeviceConfig(undefined, { mqtt: { url: 'mqtt://192.168.1.50:1883' } }, {})).toThrow(
      /field \/mqtt\/url: got mqtt:\/\/192\.168\.1\.50:1883, expected mqtts:\/\/ \(TLS\)/,
    );
    expect(() => loadFleetConfig(undefined, { mqtt: { externalUrl: 'mqtt://h:70000' } }, {})).toThrow(
      /\/mqtt\/externalUrl/,
    );
    expect(loadFleetConfig(undefined, { mqtt: { externalUrl: 'mqtt://192.168.1.50:1883' } }, {}).mqtt.externalUrl).toBe(
      'mqtt://192.168.1.50:1883',
    );
  }, 70_000);

  it('the fleet in external mode with an unreadable password file', async () => {
    const r = await exitOf(['--import', 'tsx', join(repo, 'fleet', 'main.ts')], {
      CALLBOX_FLEET__DATA__DIR: join(dir, 'ext'),
      CALLBOX_FLEET__MQTT__MODE: 'external',
      CALLBOX_FLEET__MQTT__EXTERNAL_PASSWORD_FILE: join(dir, 'missing.secret'),
    });
    expect(r.code, r.err).toBe(EXIT_CONFIG);
    expect(r.err).toMatch(/mqtt\.externalPasswordFile .*missing\.secret cannot be read/);
  }, 70_000);
});
