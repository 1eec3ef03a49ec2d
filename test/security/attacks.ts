/**
 * Shared by the attack tests in test/security/: each attack records how
 * many attempts it made and how many the fleet refused; the table reporter
 * (test/security/table-reporter.ts) prints them all at the end of the run.
 * Results go through a file named after the vitest process (each test file
 * runs in its own fork of it).
 */
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AttackRow {
  /** The item (1-15); 0: the ACL matrix regression. */
  item: number;
  attack: string;
  attempts: number;
  refused: number;
}

export function resultsFile(vitestPid: number): string {
  return join(tmpdir(), `callbox-security-${vitestPid}.jsonl`);
}

/** Record one attack's figures (call after the assertions, so a row means the attack was refused as asserted). */
export function recordAttack(row: AttackRow): void {
  appendFileSync(resultsFile(process.ppid), `${JSON.stringify(row)}\n`);
}

export function readAttacks(vitestPid: number): AttackRow[] {
  const file = resultsFile(vitestPid);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  rmSync(file, { force: true });
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AttackRow)
    .sort((a, b) => a.item - b.item || a.attack.localeCompare(b.attack));
}

export function formatTable(rows: AttackRow[]): string {
  const head = ['#', 'attack', 'attempts', 'refused'];
  const body = rows.map((r) => [
    r.item === 0 ? 'acl' : String(r.item),
    r.attack,
    String(r.attempts),
    String(r.refused),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
