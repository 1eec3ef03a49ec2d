/**
 * The Node.js flags the box's systemd unit starts it with (the words between `/usr/bin/node` and the program
 * in `ExecStart=`), so the benchmarks measure the box as production runs it, beside the same program with
 * Node's defaults.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');

export function unitNodeFlags(unit = 'callbox-device.service'): string[] {
  const text = readFileSync(join(repo, 'systemd', unit), 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`systemd/${unit} has no ExecStart= line`);
  const words = line.slice('ExecStart='.length).trim().split(/\s+/);
  const flags: string[] = [];
  for (const word of words.slice(1)) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
}
