/** The `fleet` CLI against a running fleet: output, --json, errors that say what to do, exit codes. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../fleet/cli.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { waitFor } from '../shared/wait.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

describe('fleet CLI', () => {
  let tf: TestFleet;
  const cli = async (args: string[], password = tf.adminPassword) => {
    let out = '';
    let err = '';
    const code = await runCli(['--url', tf.url, ...args], {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        err += s;
      },
      env: { CALLBOX_OPS_PASSWORD: password },
    });
    return { code, out, err };
  };

  beforeAll(async () => {
    tf = await startTestFleet();
    const box = await provisionBox(tf, 'CLI-0001');
    const c = await connectClient(tf.url, box);
    await c.publishAsync(deviceTopics(box.deviceId).events, JSON.stringify(sampleEvent(box.deviceId, 1)), { qos: 1 });
    c.end(true);
    await tf.fleet.ingest.drain();
    await waitFor(async () => (await tf.fleet.store.countEvents()) >= 1, 'the event stored');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('lists boxes as a table and as JSON', async () => {
    const table = await cli(['boxes', 'list']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^serial\s+deviceId\s+claimState/m);
    expect(table.out).toMatch(/CLI-0001\s+cb-cli-0001\s+approved/);
    const json = await cli(['--json', 'boxes', 'list']);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ serial: 'CLI-0001', deviceId: 'cb-cli-0001' })]);
  });

  it('shows a box and its events', async () => {
    const show = await cli(['boxes', 'show', 'CLI-0001']);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/events stored\s+1/);
    const events = await cli(['--json', 'events', '--box', 'cb-cli-0001']);
    expect(JSON.parse(events.out)).toEqual([expect.objectContaining({ type: 'panic.pressed', seq: 1 })]);
  });

  it('approves a waiting claim and says what to do for one that is not waiting', async () => {
    await tf.admin.call('boxes.register', { serial: 'CLI-0002' });
    const missing = await cli(['claims', 'approve', 'NOPE-0001']);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/no box "NOPE-0001".*fleet boxes list/);
    const again = await cli(['claims', 'approve', 'CLI-0001']);
    expect(again.code).toBe(6);
    expect(again.err).toMatch(/already|approved, not waiting/);
    const ok = await cli(['claims', 'approve', 'CLI-0002']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/CLI-0002 approved as cb-cli-0002/);
  });

  it('sets configuration from a YAML file, and refuses a bad one naming the field', async () => {
    const good = join(tf.dir, 'good.yaml');
    writeFileSync(good, 'clinic:\n  name: CLI Clinic\n  timezone: Europe/Paris\n');
    const r = await cli(['boxes', 'config', 'set', 'CLI-0001', good]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/cb-cli-0001: configuration version 1 published/);
    const bad = join(tf.dir, 'bad.yaml');
    writeFileSync(bad, 'clinic:\n  timezone: Nowhere/Land\n');
    const b = await cli(['boxes', 'config', 'set', 'CLI-0001', bad]);
    expect(b.code).toBe(6);
    expect(b.err).toMatch(/\/clinic\/timezone/);
    const none = await cli(['boxes', 'config', 'set', 'CLI-0001', join(tf.dir, 'missing.yaml')]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/cannot read/);
  });

  it('exits 4 on a wrong password and 5 when the fleet cannot be reached', async () => {
    const wrong = await cli(['boxes', 'list'], 'not-the-password');
    expect(wrong.code).toBe(4);
    expect(wrong.err).toMatch(/refused ops:admin.*password/);
    let err = '';
    const code = await runCli(['--url', 'mqtt://127.0.0.1:1', 'boxes', 'list'], {
      out: () => undefined,
      err: (s) => {
        err += s;
      },
      env: { CALLBOX_OPS_PASSWORD: 'x' },
    });
    expect(code).toBe(5);
    expect(err).toMatch(/is the fleet running/);
  });

  it('exits 2 on bad usage', async () => {
    const r = await cli(['boxes', 'decommission', 'CLI-0001']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--reason/);
  });

  it('runs as the installed `fleet` command', async () => {
    const r = await promisify(execFile)('node', ['fleet/bin/fleet.js', '--help'], { timeout: 15_000 });
    expect(r.stdout).toMatch(/Usage: fleet/);
    expect(r.stdout).toMatch(/boxes/);
  });
});
