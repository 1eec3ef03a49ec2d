/**
 * The CLI covers the whole ops API (every OPS_METHODS method has a command), the commands added for alert
 * settings, silences, rollover status, organisations and ping work against a fleet, and the fleet warns about
 * a clinic whose alerts would reach nobody.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clinicAlertSettings } from '../fleet/alerts/config.js';
import { type AlertsFeature, alertsFeature } from '../fleet/alerts/feature.js';
import { unreachableReason } from '../fleet/alerts/reach.js';
import { OPS_METHODS } from '../shared/contract/ops.js';
import { runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('the CLI and the ops API', () => {
  let tf: TestFleet;
  let clinicId: string;
  const cli = (args: string[]) => runFleetCli(tf.url, args, tf.adminPassword);
  beforeAll(async () => {
    tf = await startTestFleet({}, { features: [alertsFeature({ serveHttp: false })] });
    const c = await tf.admin.call('clinics.create', {
      name: 'Quiet Clinic',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      answeringService: null,
      contacts: [{ name: 'nobody reachable' }],
    });
    clinicId = c.id;
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('has a command for every ops method', () => {
    // The CLI's commands: fleet/cli.ts and the command groups it adds (fleet/updates/cli.ts: releases, rollouts;
    // fleet/figures/cli.ts: figures, targets, telemetry, exports).
    const source = ['cli.ts', join('updates', 'cli.ts'), join('figures', 'cli.ts')]
      .map((f) => readFileSync(join(import.meta.dirname, '..', 'fleet', f), 'utf8'))
      .join('\n');
    const missing = Object.keys(OPS_METHODS).filter((m) => !source.includes(`'${m}'`));
    expect(missing).toEqual([]);
  });

  it('warns when a clinic escalation has no working channel, and stops once one works', async () => {
    const feature = tf.fleet.feature<AlertsFeature>('alerts') as AlertsFeature;
    const warnings = await feature.warnUnreachable();
    expect(warnings).toEqual([
      expect.stringMatching(
        /alerts of clinic "Quiet Clinic" \(\S+\) reach nobody: no webhook .*; no email \(alerts\.smtpUrl is not set\); no contact with a phone number for SMS\. .*fleet alerts settings set/,
      ),
    ]);
    const file = join(tf.dir, 'alert-settings.yaml');
    writeFileSync(file, 'webhooks:\n  - url: https://hooks.example.test/callbox\n    secret: hook-secret-123\n');
    const set = await cli(['alerts', 'settings', 'set', clinicId, file]);
    expect(set.err).toBe('');
    expect(set.code).toBe(0);
    const got = JSON.parse((await cli(['--json', 'alerts', 'settings', 'get', clinicId])).out);
    expect(got.webhooks).toEqual([{ url: 'https://hooks.example.test/callbox', secret: 'hook-secret-123' }]);
    expect(await feature.warnUnreachable()).toEqual([]);
    // A contact with a phone is enough too.
    expect(
      unreachableReason({ webhooks: [], smtpUrl: null }, clinicAlertSettings({}), [
        { name: 'a', phone: '+15550001111' },
      ]),
    ).toBeNull();
  });

  it('silences, shows rollover status, manages organisations, pings', async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const s = await cli(['alerts', 'silence', clinicId, '--until', until, '--reason', 'router swap']);
    expect(s.err).toBe('');
    expect(s.out).toContain(`silenced until ${until}`);
    const after = JSON.parse((await cli(['--json', 'alerts', 'settings', 'get', clinicId])).out);
    expect(after.silences).toEqual([expect.objectContaining({ until, reason: 'router swap' })]);
    const ro = await cli(['rollover', 'status', clinicId]);
    expect(ro.code).toBe(0);
    expect(ro.out).toMatch(/no rollover|"active"/);
    const org = await cli(['orgs', 'create', 'Acme Health']);
    expect(org.out).toMatch(/organisation \S+ created/);
    expect(JSON.parse((await cli(['--json', 'orgs', 'list'])).out)).toEqual([
      expect.objectContaining({ name: 'Acme Health' }),
    ]);
    const ping = await cli(['ping']);
    expect(ping.out).toMatch(/^callbox-fleet \S+ answers; you are ops:admin\n$/);
  });
});
