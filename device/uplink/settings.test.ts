import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultSettings, Settings } from './settings.js';

const desired = (version: number, ringTimeoutS: number) => ({
  v: 1,
  version,
  at: '2026-11-26T10:00:00.000Z',
  settings: { ...defaultSettings(), calls: { ...defaultSettings().calls, ringTimeoutS } },
});

describe('settings applied whole', () => {
  it('a listener failing to apply rolls the others back and the version is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callbox-settings-'));
    const s = new Settings(dir);
    await s.load();
    const a: number[] = [];
    await s.addListener({ name: 'a', apply: (n) => void a.push(n.calls.ringTimeoutS) });
    await s.addListener({
      name: 'b',
      apply: (n) => {
        if (n.calls.ringTimeoutS === 99) throw new Error('modem rejected the forwarding time');
      },
    });
    expect(await s.offer(JSON.stringify(desired(1, 30)))).toMatchObject({ state: 'applied', version: 1 });
    const r = await s.offer(JSON.stringify(desired(2, 99)));
    expect(r).toMatchObject({ state: 'refused', version: 2, appliedVersion: 1 });
    expect(r?.reason).toMatch(/b could not apply it: modem rejected the forwarding time/);
    expect(a).toEqual([20, 30, 99, 30]); // a got 99, then the previous settings back
    expect(s.current.calls.ringTimeoutS).toBe(30);
    // Repeats and older versions are ignored; the refused one is not re-reported.
    expect(await s.offer(JSON.stringify(desired(2, 99)))).toBeUndefined();
    expect(await s.offer(JSON.stringify(desired(1, 30)))).toBeUndefined();
    // On disk: the last good one, 0600.
    const file = join(dir, 'settings.json');
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = new Settings(dir);
    await again.load();
    expect(again.version).toBe(1);
    expect(again.current.calls.ringTimeoutS).toBe(30);
  });

  it('missing sections take their defaults; unknown fields are refused by name', async () => {
    const s = new Settings(mkdtempSync(join(tmpdir(), 'callbox-settings-')));
    const partial = { v: 1, version: 3, at: '2026-11-26T10:00:00.000Z', settings: { telemetry: { intervalS: 30 } } };
    expect(await s.offer(JSON.stringify(partial))).toMatchObject({ state: 'applied' });
    expect(s.current.telemetry.intervalS).toBe(30);
    expect(s.current.calls.ringTimeoutS).toBe(20);
    const typo = { ...partial, version: 4, settings: { telemetry: { intervalSecs: 30 } } };
    const r = await s.offer(JSON.stringify(typo));
    expect(r).toMatchObject({ state: 'refused', version: 4, appliedVersion: 3 });
    expect(r?.reason).toMatch(/\/settings\/telemetry\/intervalSecs: .*unknown field/);
  });
});
