/**
 * Loads alsa-capture, the optional native binding used to record voicemail.
 * It compiles against ALSA's headers (libasound2-dev); on a machine without
 * them `npm install` still succeeds (it is an optional dependency) and the
 * box runs everything but voicemail recording. Asking for voicemail then
 * fails with an error that says what to install and how to rebuild.
 */
import { createRequire } from 'node:module';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

export interface AlsaCaptureOptions {
  channels?: number;
  device?: string;
  format?: string;
  periodSize?: number;
  rate?: number;
  debug?: boolean;
}

/** The part of alsa-capture's instance we use. */
export interface AlsaCaptureInstance {
  on(event: 'audio', listener: (data: Uint8Array) => void): this;
  on(event: 'error' | 'readError', listener: (error: Error | string) => void): this;
  on(event: 'close' | 'overrun', listener: () => void): this;
  close(): void;
}

export type AlsaCaptureCtor = new (options?: AlsaCaptureOptions) => AlsaCaptureInstance;

export const ALSA_HELP =
  'voicemail recording needs the optional alsa-capture module, which is not built on this machine. ' +
  'Install the ALSA headers and a compiler, then rebuild it: ' +
  '`sudo apt-get install libasound2-dev build-essential python3 && npm rebuild alsa-capture` ' +
  '(or run scripts/install-deps.sh, then npm ci)';

const require = createRequire(import.meta.url);

/**
 * The AlsaCapture class, or AudioUnavailable with instructions. `load` is a
 * seam for tests (the default requires the real package).
 */
export function loadAlsaCapture(load: () => unknown = () => require('alsa-capture')): AlsaCaptureCtor {
  let mod: unknown;
  try {
    mod = load();
  } catch (e) {
    throw new CallboxError(ErrorCode.AudioUnavailable, `${ALSA_HELP}. Cause: ${(e as Error).message.split('\n')[0]}`, {
      package: 'libasound2-dev',
      rebuild: 'npm rebuild alsa-capture',
    });
  }
  if (typeof mod !== 'function') {
    throw new CallboxError(ErrorCode.AudioUnavailable, `${ALSA_HELP}. Cause: alsa-capture did not export a class`);
  }
  return mod as AlsaCaptureCtor;
}
