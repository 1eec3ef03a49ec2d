// Used by the bin scripts: load a program from its TypeScript sources through tsx when both are present (a
// development checkout), else from its build (a production install, where tsx is not installed and the sources
// may not be shipped). Says what to do when neither is there.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

function hasTsx() {
  try {
    createRequire(import.meta.url).resolve('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

/** @param {{ source: URL, built: URL, name: string }} p */
export async function loadProgram({ source, built, name }) {
  if (existsSync(fileURLToPath(source)) && hasTsx()) {
    const { register } = await import('tsx/esm/api');
    register();
    return import(source.href);
  }
  if (existsSync(fileURLToPath(built))) return import(built.href);
  process.stderr.write(
    `${name}: neither the TypeScript sources with tsx (npm ci) nor the build (${fileURLToPath(built)}) is here: ` +
      'run `npm run build` in a checkout with its development dependencies, or install a release\n',
  );
  process.exit(1);
}
