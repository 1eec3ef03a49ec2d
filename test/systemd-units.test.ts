/**
 * The systemd files as shipped: both units verify, score "OK" in `systemd-analyze security --offline`, run the built
 * program, notify from the main process, and do not restart on a configuration error; sysusers.d and tmpfiles.d
 * make the users, groups and folders they name (applied to a scratch root by scripts/check-units.sh).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EXIT_CONFIG } from '../shared/errors.js';

const repo = resolve(import.meta.dirname, '..');

describe('systemd units', () => {
  it('verify, score OK, and set up their users and folders', async () => {
    const { stdout } = await promisify(execFile)('bash', [join(repo, 'scripts', 'check-units.sh')], {
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^verify callbox-device\.service: clean$/m);
    expect(stdout).toMatch(/^verify callbox-fleet\.service: clean$/m);
    for (const m of stdout.matchAll(/^security (\S+): ([0-9.]+) (\w+)$/gm)) {
      expect(Number(m[2]), `${m[1]}: ${m[2]}`).toBeLessThanOrEqual(3.9);
      expect(m[3]).toBe('OK');
    }
    expect(stdout).toMatch(/^sysusers: callbox callbox-fleet users; callbox in .*dialout.*$/m);
    expect(stdout).toMatch(/^tmpfiles: \/etc\/callbox 750 \/var\/lib\/callbox 700 \/var\/lib\/callbox-fleet 700/m);
  }, 70_000);

  it('starts the box from the current release, after the update guard kept outside the releases', () => {
    const text = readFileSync(join(repo, 'systemd', 'callbox-device.service'), 'utf8');
    expect(text).toMatch(
      /^ExecStart=\/usr\/bin\/node (--[a-z0-9=-]+ )*\/opt\/callbox\/current\/dist\/device\/main\.js /m,
    );
    expect(text).toMatch(
      /^ExecStartPre=-\/usr\/bin\/node \/opt\/callbox\/guard\.mjs --root \/opt\/callbox --data \/var\/lib\/callbox$/m,
    );
    expect(text).toMatch(/^ReadWritePaths=\/opt\/callbox$/m);
  });

  it.each([
    ['callbox-device.service', 'dist/device/main.js'],
    ['callbox-fleet.service', 'dist/fleet/main.js'],
  ])(
    '%s runs the build with plain node, notifies from its main process, stops on a bad configuration',
    (unit, built) => {
      const text = readFileSync(join(repo, 'systemd', unit), 'utf8');
      expect(text).toMatch(
        new RegExp(
          `^ExecStart=/usr/bin/node (--[a-z0-9=-]+ )*/opt/callbox/(current/)?${built.replace('.', '\\.')} `,
          'm',
        ),
      );
      expect(text).not.toMatch(/tsx/);
      expect(text).toMatch(/^Type=notify$/m);
      expect(text).toMatch(/^NotifyAccess=main$/m);
      expect(text).toMatch(/^WatchdogSec=\d+$/m);
      expect(text).toMatch(new RegExp(`^RestartPreventExitStatus=${EXIT_CONFIG}$`, 'm'));
      expect(text).toMatch(/^StartLimitIntervalSec=0$/m);
    },
  );
});
