/**
 * The folder rules of docs/ARCHITECTURE.md ("Folders and what they may import"), checked on every .ts/.mjs/.js file
 * git knows: each file's imports (static, type-only, dynamic import() and require with a literal path), read with
 * the TypeScript parser, resolved to a repository path and checked against the rule of the importing file's folder.
 * A failure names file -> import and the rule it breaks.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface Import {
  /** The specifier as written. */
  spec: string;
  /** `static` (import/export from), `type` (import type: erased), `dynamic` (import(), require). */
  kind: 'static' | 'type' | 'dynamic';
}

/** The imports of one source file. */
function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out: Import[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const typeOnly = ts.isImportDeclaration(node)
        ? node.importClause?.isTypeOnly === true ||
          (node.importClause !== undefined &&
            !node.importClause.name &&
            node.importClause.namedBindings !== undefined &&
            ts.isNamedImports(node.importClause.namedBindings) &&
            node.importClause.namedBindings.elements.length > 0 &&
            node.importClause.namedBindings.elements.every((e) => e.isTypeOnly))
        : node.isTypeOnly;
      out.push({ spec: node.moduleSpecifier.text, kind: typeOnly ? 'type' : 'static' });
    } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteral(node.arguments[0]!)) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isImport || isRequire) out.push({ spec: (node.arguments[0] as ts.StringLiteral).text, kind: 'dynamic' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const lit = node.argument.literal;
      if (ts.isStringLiteral(lit)) out.push({ spec: lit.text, kind: 'type' });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The rule's view of a file: its top folder, and whether it is a test beside the code. */
function zoneOf(path: string): string {
  return path.includes('/') ? path.slice(0, path.indexOf('/')) : '.';
}

const PROGRAMS = new Set(['device', 'fleet', 'shared']);

/**
 * Why `from` may not import `target` (a repository path), or null when it may. Package imports (bare specifiers)
 * are not this rule's business: scripts/build.mjs lists what each program's bundle imports.
 */
function violation(from: string, target: string, kind: Import['kind']): string | null {
  const zone = zoneOf(from);
  const to = zoneOf(target);
  const besideCodeTest = PROGRAMS.has(zone) && /\.test\.ts$/.test(from);
  if (to === 'test') {
    if (zone === 'test') return null;
    if (besideCodeTest && target.startsWith('test/helpers/')) return null;
    return besideCodeTest
      ? 'a test beside the code may import only test/helpers/ from test/'
      : `${zone}/ must not import test code (test/)`;
  }
  if (zone === 'test' || zone === 'scripts' || zone === 'bench') return null;
  if (target === 'package.json') return null;
  if (zone === 'shared') return to === 'shared' ? null : 'shared/ imports only shared/';
  if (zone === 'device' || zone === 'fleet') {
    if (to === zone || to === 'shared') {
      // The box's hardware stand-ins are loaded only when configured: production code may import device/sim/ only
      // dynamically (or for its types). Tests beside the code and the stand-ins themselves may import it.
      if (
        zone === 'device' &&
        target.startsWith('device/sim/') &&
        !from.startsWith('device/sim/') &&
        !besideCodeTest &&
        kind === 'static'
      ) {
        return 'device/ code outside device/sim/ loads a stand-in only when configured (dynamic import() or import type)';
      }
      return null;
    }
    // The wiring is data: the box loads its default pin map from the hardware folder.
    if (zone === 'device' && target.startsWith('hardware-schematics/') && target.endsWith('.json')) return null;
    return `${zone}/ imports only ${zone}/ and shared/`;
  }
  if (zone === 'hardware-schematics') return 'hardware-schematics/ holds data only (its generator is scripts/)';
  return null;
}

interface Crossing {
  file: string;
  spec: string;
  target: string;
  why: string;
}

/** Every crossing in a list of files with their imports (paths relative to the repository). */
function crossings(files: { file: string; imports: Import[] }[]): Crossing[] {
  const out: Crossing[] = [];
  for (const { file, imports } of files) {
    for (const { spec, kind } of imports) {
      if (!spec.startsWith('.')) continue;
      const target = normalize(join(dirname(file), spec));
      const why = violation(file, target, kind);
      if (why) out.push({ file, spec, target, why });
    }
  }
  return out;
}

function sourceFiles(): string[] {
  return execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mts', '*.mjs', '*.js'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter((f) => f && !f.startsWith('node_modules/'));
}

const show = (c: Crossing[]) => c.map((x) => `${x.file} -> ${x.spec} (${x.target}): ${x.why}`).join('\n');

describe('import boundaries', () => {
  it('no file imports across the folder rules of docs/ARCHITECTURE.md', () => {
    const files = sourceFiles().map((file) => ({
      file,
      imports: importsOf(file, readFileSync(join(ROOT, file), 'utf8')),
    }));
    expect(files.length).toBeGreaterThan(200);
    // The scan sees every kind of import it is meant to see (a scanner that sees nothing passes everything).
    const all = files.flatMap((f) => f.imports);
    expect(all.filter((i) => i.kind === 'static').length).toBeGreaterThan(1000);
    expect(all.some((i) => i.kind === 'dynamic')).toBe(true);
    expect(all.some((i) => i.kind === 'type')).toBe(true);
    expect(show(crossings(files))).toBe('');
  }, 120_000); // parsing every file takes seconds on a loaded machine, more than the default timeout

  it('reads static, type-only, re-exported, dynamic and require imports from the source text', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "import { type C } from './c.js';",
      "export { d } from './d.js';",
      "const e = await import('./e.js');",
      "const f = require('./f.js');",
      "type G = import('./g.js').G;",
      "import pino from 'pino';",
    ].join('\n');
    expect(importsOf('x/y.ts', text)).toEqual([
      { spec: './a.js', kind: 'static' },
      { spec: '../b.js', kind: 'type' },
      { spec: './c.js', kind: 'type' },
      { spec: './d.js', kind: 'static' },
      { spec: './e.js', kind: 'dynamic' },
      { spec: './f.js', kind: 'dynamic' },
      { spec: './g.js', kind: 'type' },
      { spec: 'pino', kind: 'static' },
    ]);
  });

  it('fails on each kind of crossing, naming file -> import (synthetic import lists)', () => {
    const s = (spec: string): Import => ({ spec, kind: 'static' });
    const found = crossings([
      { file: 'device/calls/manager.ts', imports: [s('../../fleet/alerts/engine.js'), s('../../shared/log.js')] },
      { file: 'fleet/alerts/engine.ts', imports: [s('../../device/calls/hours.js'), s('./rules.js')] },
      { file: 'shared/config-doc.ts', imports: [s('../device/config.js'), s('./config.js')] },
      { file: 'device/io/board.ts', imports: [s('../sim/virtual-io/virtual-io.js')] },
      { file: 'bench/fleet.ts', imports: [s('../test/helpers/mosquitto.js'), s('../fleet/fleet.js')] },
      { file: 'device/uplink/link.test.ts', imports: [s('../../test/uplink-helpers.js'), s('../../fleet/fleet.js')] },
      { file: 'fleet/alerts/testing.ts', imports: [s('../../test/helpers/alerts.js')] },
      { file: 'hardware-schematics/schematic.ts', imports: [s('../device/io/pinmap.js')] },
    ]);
    expect(found.map((c) => `${c.file} -> ${c.spec}`)).toEqual([
      'device/calls/manager.ts -> ../../fleet/alerts/engine.js',
      'fleet/alerts/engine.ts -> ../../device/calls/hours.js',
      'shared/config-doc.ts -> ../device/config.js',
      'device/io/board.ts -> ../sim/virtual-io/virtual-io.js',
      'bench/fleet.ts -> ../test/helpers/mosquitto.js',
      'device/uplink/link.test.ts -> ../../test/uplink-helpers.js',
      'device/uplink/link.test.ts -> ../../fleet/fleet.js',
      'fleet/alerts/testing.ts -> ../../test/helpers/alerts.js',
      'hardware-schematics/schematic.ts -> ../device/io/pinmap.js',
    ]);
    expect(show(found)).toMatch(
      /^device\/calls\/manager\.ts -> \.\.\/\.\.\/fleet\/alerts\/engine\.js .*: device\/ imports only/,
    );
  });

  it('lets through what the rules allow', () => {
    const ok: [string, string, Import['kind']][] = [
      ['device/io/board.ts', 'device/sim/virtual-io/virtual-io.js', 'dynamic'],
      ['device/io/board.ts', 'device/sim/virtual-io/virtual-io.js', 'type'],
      ['device/sim/box-rig.ts', 'device/box.js', 'static'],
      ['device/io/board.test.ts', 'device/sim/virtual-io/virtual-io.js', 'static'],
      ['device/io/pinmap.ts', 'hardware-schematics/pinmap.json', 'static'],
      ['device/uplink/link.test.ts', 'test/helpers/seeded.js', 'static'],
      ['shared/version.ts', 'package.json', 'static'],
      ['scripts/demo/demo-script.ts', 'fleet/fleet.js', 'static'],
      ['bench/fleet.ts', 'scripts/lib/mosquitto.js', 'static'],
      ['test/demo.test.ts', 'device/audio/alsa.js', 'static'],
      ['device/bin/callbox-device.js', 'shared/load-program.mjs', 'static'],
    ];
    for (const [from, to, kind] of ok) expect(violation(from, to, kind), `${from} -> ${to}`).toBeNull();
  });
});
