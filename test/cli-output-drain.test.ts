/**
 * Output is never cut: a listing larger than a pipe's buffer (64 KB), read by a slow reader, arrives whole
 * before the `fleet` command exits.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

const repo = join(import.meta.dirname, '..');

describe('fleet CLI output through a slow pipe', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
    for (let i = 0; i < 400; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          tf.admin.call('boxes.register', { serial: `CB-BIG-${String(i + j).padStart(4, '0')}` }),
        ),
      );
    }
  }, 60_000);
  afterAll(async () => {
    await tf?.close();
  });

  it('a >64 KB --json listing arrives whole through a slow reader', async () => {
    // A shell pipe (as in `fleet ... --json | jq`) read only after 2 s: the writer fills the pipe (64 KB) and
    // must wait for the reader before it exits.
    const child = spawn(
      'sh',
      [
        '-c',
        '{ node fleet/bin/fleet.js "$@"; echo "exit=$?" >&2; } | (sleep 2; cat)',
        'sh',
        ...['--url', tf.url, '--json', 'boxes', 'list', '--limit', '1000'],
      ],
      { cwd: repo, env: { ...process.env, CALLBOX_OPS_PASSWORD: tf.adminPassword }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    await new Promise((r) => child.on('close', r));
    const code = Number(/exit=(\d+)/.exec(err)?.[1]);
    err = err.replace(/exit=\d+\n/, '');
    const out = Buffer.concat(chunks).toString();
    expect(err).toBe('');
    expect(code).toBe(0);
    console.log(`output: ${out.length} bytes`);
    expect(out.length).toBeGreaterThan(65_536);
    const boxes = JSON.parse(out) as { serial: string }[];
    expect(boxes).toHaveLength(400);
  }, 90_000);
});
