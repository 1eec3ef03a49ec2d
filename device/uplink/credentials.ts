/**
 * The box's own MQTT credentials, received at provisioning:
 * <dataDir>/credentials.json, mode 0600, written atomically. A file that
 * does not parse or validate is set aside (credentials.json.bad-<time>) and
 * the box goes back to claiming; revoked credentials are set aside as
 * credentials.json.revoked-<time> (kept for a technician, never used again).
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceId, Nullable, type Static, Strict, Timestamp, Type } from '../../shared/schema.js';
import { decodePayload } from '../../shared/validate.js';
import { readIfExists, writeFileAtomic } from './files.js';

export const CredentialsSchema = Strict({
  v: Type.Literal(1),
  deviceId: DeviceId(),
  username: Type.String({ minLength: 1, maxLength: 128 }),
  password: Type.String({ minLength: 16, maxLength: 256 }),
  caPem: Nullable(Type.String({ maxLength: 16_384 })),
  brokerUrl: Nullable(Type.String({ maxLength: 256 })),
  provisionedAt: Timestamp(),
});
export type Credentials = Static<typeof CredentialsSchema>;

export const CREDENTIALS_FILE = 'credentials.json';

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

export class CredentialsFile {
  readonly path: string;
  constructor(dataDir: string) {
    this.path = join(dataDir, CREDENTIALS_FILE);
  }

  /** The stored credentials; undefined if none. A damaged file is set aside and reported through onBad. */
  async load(onBad?: (reason: string, movedTo: string) => void): Promise<Credentials | undefined> {
    const text = await readIfExists(this.path);
    if (text === undefined) return undefined;
    try {
      return decodePayload(CredentialsSchema, text, this.path);
    } catch (e) {
      const movedTo = `${this.path}.bad-${stamp()}`;
      await rename(this.path, movedTo);
      onBad?.((e as Error).message, movedTo);
      return undefined;
    }
  }

  save(c: Credentials): Promise<void> {
    return writeFileAtomic(this.path, `${JSON.stringify(c, null, 2)}\n`, 0o600);
  }

  /** Set revoked credentials aside; returns where they went. */
  async revoke(): Promise<string> {
    const movedTo = `${this.path}.revoked-${stamp()}`;
    await rename(this.path, movedTo).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return movedTo;
  }
}
