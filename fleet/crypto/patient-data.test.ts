import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PatientCipher, rotateKey } from './patient-data.js';

describe('patient data at rest (AES-256-GCM, key file apart)', () => {
  it('makes its key file 0600 and seals fields, bytes, with the current key', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keys-')), 'k', 'fleet-data.key');
    const c = PatientCipher.open(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const sealed = c.sealFields({ callId: 'c1', number: '+15551234567', nested: [{ from: '+15550000001' }] });
    expect(sealed.callId).toBe('c1');
    expect(sealed.number).toMatch(/^enc:v1:k1:/);
    expect(JSON.stringify(sealed)).not.toContain('5551234567');
    expect(c.openFields(sealed)).toEqual({ callId: 'c1', number: '+15551234567', nested: [{ from: '+15550000001' }] });
    expect(c.openFields({ number: '+1555' })).toEqual({ number: '+1555' }); // stored before encryption
    const wav = Buffer.from('RIFF....WAVEfmt ');
    expect(c.openBytes(c.sealBytes(wav)).equals(wav)).toBe(true);
  });

  it('rotates: new data under the new key, old data still readable, a removed key named', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keys-')), 'fleet-data.key');
    const before = PatientCipher.open(file);
    const old = before.sealText('+15551234567');
    expect(rotateKey(file)).toBe('k2');
    const after = PatientCipher.open(file);
    expect(after.keyId).toBe('k2');
    expect(after.sealText('x')).toMatch(/^enc:v1:k2:/);
    expect(after.openText(old)).toBe('+15551234567');
    const onlyNew = PatientCipher.parse(readFileSync(file, 'utf8').split('\n').slice(1).join('\n'));
    expect(() => onlyNew.openText(old)).toThrow(/key "k1".*no longer holds/);
    const tampered = `${old.slice(0, -2)}AA`;
    expect(() => after.openText(tampered)).toThrow();
    expect(() => PatientCipher.parse('k1 short')).toThrow(/line 1 is not/);
  });
});
