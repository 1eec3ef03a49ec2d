import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceConfigSchema, loadDeviceConfig } from '../device/config.js';
import { FleetConfigSchema, loadFleetConfig } from '../fleet/config.js';
import { undocumentedTimeouts } from '../shared/config.js';
import { DeviceSettingsSchema } from '../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'callbox-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(fn: () => unknown): CallboxError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CallboxError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('configuration loading', () => {
  it('fills every default from an empty file', () => {
    const c = loadDeviceConfig(file('empty.yaml', ''), undefined, {});
    expect(c.modem.baudRate).toBe(115200);
    expect(c.mqtt.keepaliveS).toBe(30);
    expect(c.modem.maxConsecutiveTimeouts).toBe(10);
  });

  it('reads YAML and JSON files', () => {
    expect(loadDeviceConfig(file('a.yaml', 'modem:\n  baudRate: 9600\n'), undefined, {}).modem.baudRate).toBe(9600);
    expect(loadDeviceConfig(file('a.json', '{"modem":{"baudRate":57600}}'), undefined, {}).modem.baudRate).toBe(57600);
  });

  it('lets the environment override the file, by field name ignoring case and underscores', () => {
    const c = loadFleetConfig(file('f.yaml', 'mqtt:\n  port: 1884\n'), undefined, {
      CALLBOX_FLEET__MQTT__PORT: '18830',
      CALLBOX_FLEET__STORE__KIND: 'postgres',
      CALLBOX_FLEET__PRESENCE__OFFLINE_AFTER_S: '60',
    });
    expect(c.mqtt.port).toBe(18830);
    expect(c.store.kind).toBe('postgres');
    expect(c.presence.offlineAfterS).toBe(60);
  });

  it('names file, field, value and range for a value out of range', () => {
    const f = file('bad.yaml', 'modem:\n  commandTimeoutMs: -5\n');
    const e = errorOf(() => loadDeviceConfig(f, undefined, {}));
    expect(e.code).toBe(ErrorCode.ConfigInvalid);
    expect(e.message).toContain(f);
    expect(e.message).toContain('/modem/commandTimeoutMs');
    expect(e.message).toContain('got -5');
    expect(e.message).toMatch(/>= 200, <= 60000/);
    expect(e.message).toContain('nothing was started');
  });

  it('rejects an unknown field (a typo) by name', () => {
    const e = errorOf(() => loadDeviceConfig(file('typo.yaml', 'modem:\n  baudrate: 9600\n'), undefined, {}));
    expect(e.message).toMatch(/\/modem\/baudrate: got 9600, expected no such field/);
  });

  it('reports every bad field at once', () => {
    const e = errorOf(() =>
      loadFleetConfig(file('many.yaml', 'mqtt:\n  port: 70000\n  mode: swarm\nhttp:\n  port: -1\n'), undefined, {}),
    );
    expect(e.message).toContain('/mqtt/port');
    expect(e.message).toContain('/mqtt/mode');
    expect(e.message).toContain('/http/port');
  });

  it('names the environment variable when the bad value came from it', () => {
    const e = errorOf(() => loadFleetConfig(undefined, undefined, { CALLBOX_FLEET__MQTT__PORT: '99999' }));
    expect(e.message).toMatch(/environment CALLBOX_FLEET__MQTT__PORT: field \/mqtt\/port: got 99999/);
    const typo = errorOf(() => loadFleetConfig(undefined, undefined, { CALLBOX_FLEET__MQTT__PROT: '1' }));
    expect(typo.message).toMatch(
      /CALLBOX_FLEET__MQTT__PROT: "PROT" names no setting under \/mqtt; known: mode, host, port/,
    );
    const nan = errorOf(() => loadFleetConfig(undefined, undefined, { CALLBOX_FLEET__MQTT__PORT: 'eighteen' }));
    expect(nan.message).toMatch(/got "eighteen", expected an integer/);
  });

  it('explains a missing file and a broken one', () => {
    const missing = errorOf(() => loadDeviceConfig(join(dir, 'nope.yaml'), undefined, {}));
    expect(missing.code).toBe(ErrorCode.ConfigFileUnreadable);
    expect(missing.message).toMatch(/cannot read .*nope\.yaml \(ENOENT\)/);
    const broken = errorOf(() => loadDeviceConfig(file('broken.yaml', 'modem: [unclosed\n'), undefined, {}));
    expect(broken.code).toBe(ErrorCode.ConfigParseFailed);
    expect(broken.message).toContain('broken.yaml');
    const scalar = errorOf(() => loadDeviceConfig(file('scalar.yaml', 'just a string\n'), undefined, {}));
    expect(scalar.message).toMatch(/mapping of settings/);
  });

  it('documents unit, range and default of every duration in every schema', () => {
    expect(undocumentedTimeouts(DeviceConfigSchema)).toEqual([]);
    expect(undocumentedTimeouts(FleetConfigSchema)).toEqual([]);
    expect(undocumentedTimeouts(DeviceSettingsSchema)).toEqual([]);
  });
});
