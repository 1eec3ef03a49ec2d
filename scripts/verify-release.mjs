#!/usr/bin/env node
// `node scripts/verify-release.mjs [DIR]`: checks an unpacked release (default: the folder above this script)
// against its MANIFEST.json: every listed file present with its sha256, and no file that the manifest does not
// list. Prints what differs and exits 1, or prints a summary and exits 0. Shipped in every release.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
const manifestFile = join(dir, 'MANIFEST.json');
if (!existsSync(manifestFile)) {
  process.stderr.write(`verify-release: ${manifestFile} is missing: ${dir} is not an unpacked release\n`);
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
const problems = [];
for (const [file, sha] of Object.entries(manifest.files)) {
  const full = join(dir, file);
  if (!existsSync(full)) problems.push(`missing: ${file}`);
  else if (createHash('sha256').update(readFileSync(full)).digest('hex') !== sha) problems.push(`modified: ${file}`);
}
(function walk(d) {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const full = join(d, e.name);
    if (e.isDirectory()) walk(full);
    else if (e.isFile()) {
      const rel = relative(dir, full);
      if (rel !== 'MANIFEST.json' && !(rel in manifest.files)) problems.push(`not in the manifest: ${rel}`);
    }
  }
})(dir);
if (problems.length > 0) {
  process.stderr.write(
    `verify-release: ${dir} does not match its manifest:\n  ${problems.slice(0, 50).join('\n  ')}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `verify-release: ${manifest.program} ${manifest.version} (${manifest.platform}-${manifest.arch}, node ${manifest.node}): ` +
    `${Object.keys(manifest.files).length} files match\n`,
);
