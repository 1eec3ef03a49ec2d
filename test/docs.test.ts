import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC_PATH, renderConfigDoc } from '../scripts/config-doc.js';
import { loadExtraTables, PROTOCOL_DOC_PATH, renderProtocolDoc } from '../scripts/protocol-doc.js';

describe('generated docs match the code', () => {
  it('docs/PROTOCOL.md is what the contract renders (run `npm run docs` after changing the contract)', async () => {
    expect(readFileSync(PROTOCOL_DOC_PATH, 'utf8')).toBe(renderProtocolDoc(await loadExtraTables()));
  });

  it('docs/CONFIGURATION.md is what the schemas render (run `npm run docs` after changing a schema)', () => {
    expect(readFileSync(CONFIG_DOC_PATH, 'utf8')).toBe(renderConfigDoc());
  });
});
