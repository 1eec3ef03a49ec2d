/**
 * sd_notify to a unix datagram socket the test binds (with python3, which reports the sender's credentials as
 * systemd sees them): from the process itself through unix-dgram, so NotifyAccess=main accepts it, and through the
 * systemd-notify tool where the addon is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SystemdNotifier } from '../shared/systemd-notify.js';
import { waitFor } from '../shared/wait.js';

const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill();
});

/** A receiver on a temp unix datagram socket; resolves when bound. */
async function receiver(): Promise<{ path: string; messages: string[] }> {
  const path = join(mkdtempSync(join(tmpdir(), 'callbox-notify-')), 'notify.sock');
  const py = [
    'import socket, struct',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    `s.bind(${JSON.stringify(path)})`,
    's.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)',
    'print("bound", flush=True)',
    'while True:',
    '    m, anc, _f, _a = s.recvmsg(4096, socket.CMSG_SPACE(12))',
    '    pid = next((struct.unpack("iII", d[:12])[0] for (l, t, d) in anc if t == socket.SCM_CREDENTIALS), 0)',
    '    print(str(pid) + " " + m.decode().strip().replace("\\n", "|"), flush=True)',
  ].join('\n');
  const p = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stderr?.on('data', (d: Buffer) => process.stderr.write(d)); // shown if the test fails
  procs.push(p);
  const messages: string[] = [];
  await new Promise<void>((resolve) => {
    createInterface({ input: p.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      if (l === 'bound') resolve();
      else messages.push(l);
    });
  });
  return { path, messages };
}

describe('systemd notification', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const sent: string[][] = [];
    const n = new SystemdNotifier({ env: { WATCHDOG_USEC: '100000' }, send: async (f) => void sent.push(f) });
    expect(n.enabled).toBe(false);
    await n.ready();
    vi.useFakeTimers();
    try {
      n.startWatchdog(async () => true);
      await vi.advanceTimersByTimeAsync(150); // three watchdog periods
    } finally {
      vi.useRealTimers();
    }
    await n.stopping();
    expect(sent).toEqual([]);
  });

  async function lifecycle(n: SystemdNotifier, rx: { messages: string[] }): Promise<void> {
    expect(n.enabled).toBe(true);
    expect(n.watchdogIntervalMs).toBe(100);
    await n.ready('booted');
    await waitFor(() => rx.messages.some((m) => m.includes('READY=1')));
    let healthy = true;
    n.startWatchdog(async () => healthy);
    await waitFor(() => rx.messages.filter((m) => m.includes('WATCHDOG=1')).length >= 2);
    healthy = false;
    await new Promise((r) => setTimeout(r, 150));
    const fed = rx.messages.filter((m) => m.includes('WATCHDOG=1')).length;
    await new Promise((r) => setTimeout(r, 350));
    expect(rx.messages.filter((m) => m.includes('WATCHDOG=1')).length).toBe(fed);
    await n.stopping();
    await waitFor(() => rx.messages.some((m) => m.includes('STOPPING=1')));
  }

  it('READY, WATCHDOG only while healthy, STOPPING, sent by the process itself (NotifyAccess=main)', async () => {
    const rx = await receiver();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000' } });
    await lifecycle(n, rx);
    // The kernel's credentials name this process: systemd attributes the message to the main PID.
    expect(rx.messages[0]).toBe(`${process.pid} READY=1|STATUS=booted`);
    expect(rx.messages.every((m) => m.startsWith(`${process.pid} `))).toBe(true);
  });

  // Needs the systemd-notify tool (Debian package systemd): the fallback where unix-dgram did not build.
  it('falls back to the systemd-notify tool', async () => {
    const rx = await receiver();
    const env = { PATH: process.env.PATH, NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000' };
    const n = new SystemdNotifier({ env, preferTool: true });
    await lifecycle(n, rx);
    expect(rx.messages[0]).toMatch(new RegExp(`MAINPID=${process.pid}\\|READY=1\\|STATUS=booted$`));
  });
});
