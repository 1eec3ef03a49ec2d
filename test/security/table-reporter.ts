/**
 * Prints the security attacks' table (attack, attempts, refused) at the end
 * of a run that included test/security/ (see test/security/attacks.ts).
 */
import type { Reporter } from 'vitest/node';
import { formatTable, readAttacks } from './attacks.js';

export default class SecurityTableReporter implements Reporter {
  onTestRunEnd(): void {
    const rows = readAttacks(process.pid);
    if (rows.length === 0) return;
    process.stdout.write(`\nsecurity attacks (test/security):\n${formatTable(rows)}\n`);
  }
}
