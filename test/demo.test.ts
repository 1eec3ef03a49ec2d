/**
 * `npm run demo` end to end: the demo script runs the fleet, one simulated
 * box and the narrated scenario, and exits 0 on its own with the key steps
 * and the figures on its console (with the after-hours voicemail recorded
 * through alsa-capture where it is built), leaving no process behind. Without socat
 * it stops at once with a clear instruction.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAlsaCapture } from '../device/audio/alsa.js';

const ROOT = join(import.meta.dirname, '..');
const DEMO = ['--import', 'tsx', 'scripts/demo/demo.ts'];

function run(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, DEMO, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

function processesMentioning(text: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.includes(text));
}

/** Whether something still listens on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('npm run demo', () => {
  it('runs the narrated scenario and exits 0 on its own, leaving nothing running', async () => {
    const { code, out, err } = await run({ ...process.env, CALLBOX_LOG_LEVEL: 'info' }, 110_000);
    expect(err).not.toMatch(/demo:|Error/);
    expect(code).toBe(0);
    const port = /embedded MQTT broker on 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
    expect(Number(port)).toBeGreaterThan(0);
    expect(Number(port)).not.toBe(1883);
    expect(out).toContain('device id cb-cb-demo-0001, online');
    expect(out).toMatch(/the box applied settings v1/);
    expect(out).toContain('modem <- ATA');
    expect(out).toMatch(/modem <- AT\+CTFR="\+\*+9999"/);
    expect(out).toContain('CRITICAL alert raised');
    expect(out).toContain('Dr Alice opens the link in her SMS and presses "Acknowledge"');
    expect(out).toMatch(/panic LED now on/);
    expect(out).toMatch(/panic\.acknowledged +by link:Dr Alice/);
    expect(out).toMatch(/modem <- AT\+CCFC=0,3,/);
    expect(out).toContain('unconditional on to');
    expect(out).toContain('unconditional off, confirmed by AT+CCFC query');
    expect(out).toMatch(/answered; rings \d+, answer \d+\.\d s/);
    expect(out).toMatch(/rolled_over; rings \d+/);
    let audio = true;
    try {
      loadAlsaCapture();
    } catch {
      audio = false;
    }
    if (audio) {
      expect(out).toContain('calls now go to voicemail');
      expect(out).toMatch(/recorded 10\.0 s/);
      expect(out).toMatch(/the fleet stored \d+ KB and confirmed checksum [0-9a-f]{12}/);
      expect(out).toContain('the box deleted its encrypted copy only after that confirmation');
      expect(out).toMatch(/voicemail\.recorded +from \+\*+0003, 10\.0 s/);
      expect(out).toContain('3 calls: 1 answered');
      expect(out).toContain('1 rolled over to the answering service, 1 to voicemail');
    } else {
      expect(out).toMatch(/skipped: (voicemail recording is off|this machine has no ALSA configuration)/);
      expect(out).toContain('2 calls: 1 answered');
    }
    // who called (the FHIR stand-in's patients), who to call back, the survey reply counted
    expect(out).toMatch(/\+\*+0001 +answered +Ada Lovelace \(born 1985-12-10\)/);
    expect(out).toMatch(/\+\*+0002 +rolled_over +Grace Brewster Hopper/);
    expect(out).toMatch(/call-back list: [12] to return \(\+\*+0002 rolled_over/);
    expect(out).toContain('satisfaction: 1 survey sent, 1 reply, average 5 of 5');
    expect(readFileSync(/Logs \(JSON, one line per entry\): (\S+)/.exec(out)?.[1] ?? '', 'utf8')).not.toMatch(
      /Lovelace|Hopper|1985-12-10/,
    );
    expect(out).toContain('Demo finished');
    // no phone number in clear on the console
    expect(out).not.toMatch(/\+1555\d{7}/);
    // the logs went to the file it names, not the console
    const logFile = /Logs \(JSON, one line per entry\): (\S+)/.exec(out)?.[1] ?? '';
    expect(existsSync(logFile)).toBe(true);
    expect(readFileSync(logFile, 'utf8')).toContain('"ns":"device:box"');
    expect(out).not.toContain('"level"');
    // the modem emulator's socat and pty links, and the broker, are gone
    const ptyDir = /modem emulator \(SIM7600\) on the pty (\S+)\/modem/.exec(out)?.[1] ?? '';
    expect(ptyDir).toMatch(/callbox-modem-/);
    expect(processesMentioning(ptyDir)).toEqual([]);
    expect(existsSync(ptyDir)).toBe(false);
    expect(await listening(Number(port))).toBe(false);
    rmSync(join(logFile, '..'), { recursive: true, force: true });
  }, 120_000);

  it('without socat it says what to install and exits at once', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'callbox-nosocat-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    try {
      const { code, err } = await run({ ...process.env, PATH: bin }, 20_000);
      expect(code).toBe(2);
      expect(err).toContain('socat is not installed');
      expect(err).toContain('run scripts/install-deps.sh');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, 30_000);
});
