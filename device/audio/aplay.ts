/**
 * Plays a WAV file into the modem's audio path with alsa-utils' `aplay`,
 * supervised: spawned with its arguments (no shell), killed when the call
 * ends (the signal aborts) or when it runs past its time limit, its exit
 * status checked (the last lines of its stderr are in the error), and a
 * clear AudioUnavailable error when the tool is not installed.
 *
 * A process rather than a binding: aplay is part of every ALSA install (the
 * box already depends on ALSA for capture), it reads any WAV header itself,
 * and a hung sound device takes down a child, not the box's event loop.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

export const APLAY_HELP =
  'WAV greetings are played with aplay from alsa-utils: `sudo apt-get install alsa-utils` (or use a tts greeting)';

export interface PlayWavOptions {
  file: string;
  /** ALSA playback device (a name from asound.conf, e.g. the modem's audio interface). */
  device: string;
  /** Kill aplay if it runs longer than this (ms). */
  timeoutMs: number;
  /** Aborting kills aplay (the caller hung up); the promise then resolves 'stopped'. */
  signal?: AbortSignal;
  /** The program (default `aplay` on the PATH). */
  aplay?: string;
  /** Environment for the child (default: the box's own; tests point ALSA_CONFIG_PATH at their asound.conf). */
  env?: NodeJS.ProcessEnv;
}

/** How long aplay gets after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 1000;
const STDERR_KEEP = 2000;

export async function playWav(o: PlayWavOptions): Promise<'done' | 'stopped'> {
  try {
    await access(o.file, constants.R_OK);
  } catch (e) {
    throw new CallboxError(
      ErrorCode.AudioUnavailable,
      `greeting file ${o.file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}): expected a readable WAV file on the box`,
      { file: o.file },
    );
  }
  if (o.signal?.aborted) return 'stopped';
  const program = o.aplay ?? 'aplay';
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['-q', '-D', o.device, o.file], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: o.env ?? process.env,
    });
    let stderr = '';
    let outcome: 'stopped' | 'timeout' | null = null;
    let killTimer: ReturnType<typeof setTimeout> | null = null;
    const kill = (why: 'stopped' | 'timeout') => {
      if (outcome || child.exitCode !== null) return;
      outcome = why;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    const onAbort = () => kill('stopped');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const limit = setTimeout(() => kill('timeout'), o.timeoutMs);
    const cleanUp = () => {
      clearTimeout(limit);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_KEEP);
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      cleanUp();
      if (e.code === 'ENOENT') {
        reject(new CallboxError(ErrorCode.AudioUnavailable, `${program} not found. ${APLAY_HELP}`, { program }));
      } else reject(new CallboxError(ErrorCode.AudioUnavailable, `${program} could not start: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      cleanUp();
      if (outcome === 'stopped') resolve('stopped');
      else if (outcome === 'timeout') {
        reject(
          new CallboxError(
            ErrorCode.AudioUnavailable,
            `${program} played ${o.file} for longer than ${o.timeoutMs} ms: killed`,
            {
              device: o.device,
            },
          ),
        );
      } else if (code === 0) resolve('done');
      else {
        reject(
          new CallboxError(
            ErrorCode.AudioUnavailable,
            `${program} -D ${o.device} ${o.file} failed (${code === null ? `signal ${signal}` : `exit status ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`,
            { device: o.device, code, signal },
          ),
        );
      }
    });
  });
}
