import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bcryptHashes } from './bcrypt.js';

/** Check with the system's crypt(): hashing the secret with the hash as its salt gives the hash back. */
const verifies = (secret: string, hash: string) =>
  execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', secret, hash]).toString() === hash;

describe('bcrypt hashes for the engine users', () => {
  it('hashes each secret with its own salt, verifiable, at the asked cost', async () => {
    const [a, b, c] = await bcryptHashes(['secret-one', 'secret-one', 'pässwörd with spaces'], 5);
    expect(a).toMatch(/^\$2b\$05\$[./A-Za-z0-9]{53}$/);
    expect(a).not.toBe(b);
    expect(verifies('secret-one', a as string)).toBe(true);
    expect(verifies('secret-two', a as string)).toBe(false);
    expect(verifies('pässwörd with spaces', c as string)).toBe(true);
  });

  it('refuses what bcrypt cannot take, naming it', async () => {
    await expect(bcryptHashes(['x'], 3)).rejects.toThrow(/bcrypt cost 3: accepted 4\.\.31/);
    await expect(bcryptHashes(['x'.repeat(73)])).rejects.toThrow(/longer than 72 bytes/);
    expect(await bcryptHashes([])).toEqual([]);
  });
});
