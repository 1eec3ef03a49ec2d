/**
 * A first start that cannot work touches nothing: a taken broker port stops the fleet before its data folder,
 * store or keys are created, at once; `fleet mosquitto-config` needs the fleet's configuration or data folder
 * and never creates an empty store.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../fleet/cli.js';
import { loadFleetConfig } from '../fleet/config.js';
import { Fleet } from '../fleet/fleet.js';
import { ErrorCode } from '../shared/errors.js';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env,
  });
  return { code, out, err };
}

describe('first start guards', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fleet-guards-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('a taken port fails at once, before the data folder is created', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    const data = join(tmp, 'data');
    try {
      const config = loadFleetConfig(undefined, { data: { dir: data }, mqtt: { host: '127.0.0.1', port } }, {});
      const t0 = Date.now();
      await expect(Fleet.start(config)).rejects.toMatchObject({
        code: ErrorCode.BrokerPortInUse,
        message: expect.stringMatching(
          new RegExp(`127\\.0\\.0\\.1:${port}.*in use.*CALLBOX_FLEET__MQTT__PORT=<port>.*external`),
        ),
      });
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(existsSync(data)).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('mosquitto-config without the configuration or data folder says so and creates nothing', async () => {
    const hadVar = existsSync('var/fleet.db');
    const out = join(tmp, 'mosq');
    const r = await cli(['mosquitto-config', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--config FILE.*--data-dir DIR or CALLBOX_FLEET__DATA__DIR/);
    expect(existsSync('var/fleet.db')).toBe(hadVar);
    expect(existsSync(out)).toBe(false);

    const empty = mkdtempSync(join(tmp, 'empty-'));
    const r2 = await cli(['--data-dir', empty, 'mosquitto-config', '--out', out]);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain(`no fleet store at ${join(empty, 'fleet.db')} (nothing created)`);
    expect(readdirSync(empty)).toEqual([]);
  });
});
