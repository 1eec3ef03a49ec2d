/**
 * bcrypt hashes for the NATS engine's users (cluster mode): nats-server
 * checks a password against a bcrypt hash ("$2a$"/"$2b$") kept in its
 * configuration, so no plain secret is written there. Made with bcryptjs
 * (pure JavaScript, no native build), in the "$2b$" form; its test checks
 * them against the system's own crypt().
 */
import bcrypt from 'bcryptjs';

/**
 * Work factor for secrets the fleet generates (256 random bits: their
 * entropy protects them, not the work factor), bcrypt's lowest: 10,000
 * boxes reconnecting to a node after another failed cost it 10,000 checks
 * (about 1 ms each at cost 4, 4 ms at cost 6).
 */
export const MACHINE_BCRYPT_COST = 4;
/** Work factor for secrets people choose or print (ops passwords, label claim secrets). */
export const HUMAN_BCRYPT_COST = 11;

/** bcrypt hashes of the secrets, in order, each with its own salt. */
export async function bcryptHashes(secrets: readonly string[], cost = MACHINE_BCRYPT_COST): Promise<string[]> {
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt cost ${cost}: accepted 4..31`);
  for (const s of secrets) {
    if (Buffer.byteLength(s) > 72) throw new Error('a secret longer than 72 bytes cannot be hashed with bcrypt');
  }
  const out: string[] = [];
  // One after another: bcryptjs yields to the event loop between rounds, so a batch of thousands does not
  // stall the fleet.
  for (const s of secrets) out.push(await bcrypt.hash(s, await bcrypt.genSalt(cost)));
  return out;
}

export async function bcryptHash(secret: string, cost = MACHINE_BCRYPT_COST): Promise<string> {
  const [h] = await bcryptHashes([secret], cost);
  return h as string;
}
