// Duplicate-code report (npm run report:dupes): runs jscpd (a well-kept copy/paste detector) over the program code
// (device/ fleet/ shared/ scripts/ bench/, tests beside the code left out) and, separately, over the tests (test/ and
// every *.test.ts), and prints for each the clones found, the duplicated lines and their share of all lines.
// `--list` also names every clone (file:lines <-> file:lines). jscpd's defaults decide what a clone is (at least
// 50 tokens and 5 lines alike, exact clones), so the figures before and after a change compare like with like.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const jscpd = join(root, 'node_modules', '.bin', 'jscpd');
const list = process.argv.includes('--list');

const scans = [
  {
    name: 'program code',
    paths: ['device', 'fleet', 'shared', 'scripts', 'bench'],
    pattern: '**/*.{ts,mjs}',
    ignore: ['**/*.test.ts', '**/node_modules/**', '**/dist/**'],
  },
  {
    name: 'tests',
    paths: ['test', 'device', 'fleet', 'shared'],
    pattern: '{test/**/*.{ts,mjs},**/*.test.ts}',
    ignore: ['**/node_modules/**', 'test/fixtures/**'],
  },
];

function run(scan) {
  const out = mkdtempSync(join(tmpdir(), 'callbox-dupes-'));
  try {
    const args = [
      ...scan.paths,
      '--pattern',
      scan.pattern,
      '--reporters',
      'json',
      '--output',
      out,
      '--absolute',
      '--silent',
      '--no-tips',
    ];
    if (scan.ignore) args.push('--ignore', scan.ignore.join(','));
    const r = spawnSync(jscpd, args, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) {
      process.stderr.write(`report:dupes: jscpd exited ${r.status}\n${r.stderr}${r.stdout}`);
      process.exit(1);
    }
    return JSON.parse(readFileSync(join(out, 'jscpd-report.json'), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const where = (f) => `${relative(root, f.name)}:${f.start}-${f.end}`;

for (const scan of scans) {
  const report = run(scan);
  const t = report.statistics.total;
  process.stdout.write(
    `${scan.name.padEnd(13)} ${String(t.sources).padStart(4)} files ${String(t.lines).padStart(6)} lines: ` +
      `${t.clones} clones, ${t.duplicatedLines} duplicated lines (${t.percentage.toFixed(2)}%)\n`,
  );
  if (list) {
    for (const d of report.duplicates) {
      process.stdout.write(
        `  ${String(d.lines).padStart(3)} lines  ${where(d.firstFile)}  <->  ${where(d.secondFile)}\n`,
      );
    }
  }
}
