/**
 * A pseudo-terminal pair made by socat: whatever is written to one end
 * comes out of the other, as over a USB serial cable. The emulator opens
 * one end, the driver under test opens the other with the real serialport.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** The end the emulator opens. */
  devicePath: string;
  /** The end the driver opens (stands for /dev/ttyACM0). */
  hostPath: string;
  close(): Promise<void>;
}

export async function openPtyPair(timeoutMs = 5000): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'callbox-pty-'));
  const devicePath = join(dir, 'device');
  const hostPath = join(dir, 'host');
  const child: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${devicePath}`, `pty,raw,echo=0,link=${hostPath}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(devicePath) && existsSync(hostPath))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`socat could not make a pty pair (is socat installed?): ${stderr.trim() || 'timeout'}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    devicePath,
    hostPath,
    async close() {
      if (child.exitCode === null) {
        child.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
