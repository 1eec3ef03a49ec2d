/** Types of guard.mjs (plain JavaScript so that systemd runs it without the build). */
export function runGuard(opts: {
  root: string;
  dataDir: string;
  maxStarts?: number;
  now?: Date;
}): 'none' | 'counted' | 'rolled_back';
export function writeState(dataDir: string, state: unknown): void;
export function currentVersion(root: string): string | null;
export function pointCurrent(root: string, version: string): void;
