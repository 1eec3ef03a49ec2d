/**
 * bcrypt hashes for the NATS engine's users (cluster mode): nats-server
 * checks a password against a bcrypt hash ("$2a$"/"$2b$") kept in its
 * configuration, so no plain secret is written there. The hash is made by
 * the system's libcrypt (libxcrypt, Debian's libcrypt1, which implements
 * bcrypt as "$2b$"), reached through perl-base's crypt() (Debian marks
 * perl-base essential: it is on every Debian machine). One perl process
 * hashes a whole batch. Secrets go over its stdin, hex-encoded, never on a
 * command line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const BCRYPT_B64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Work factor for secrets the fleet generates (256 random bits: their
 * entropy protects them, and thousands of boxes reconnecting to a node
 * should not queue behind the check).
 */
export const MACHINE_BCRYPT_COST = 6;
/** Work factor for secrets people choose or print (ops passwords, label claim secrets). */
export const HUMAN_BCRYPT_COST = 11;

/** bcrypt's own base64 of 16 random bytes: 22 characters. */
function bcryptSalt(): string {
  const bytes = randomBytes(16);
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += BCRYPT_B64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += BCRYPT_B64[(acc << (6 - bits)) & 63];
  return out.slice(0, 22);
}

const PERL =
  'while (my $l = <STDIN>) { chomp $l; my ($s, $h) = split / /, $l; print crypt(pack("H*", $h), $s), "\\n" }';

/** bcrypt hashes of the secrets, in order. */
export async function bcryptHashes(secrets: readonly string[], cost = MACHINE_BCRYPT_COST): Promise<string[]> {
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt cost ${cost}: accepted 4..31`);
  if (secrets.length === 0) return [];
  for (const s of secrets) {
    if (Buffer.byteLength(s) > 72) throw new Error('a secret longer than 72 bytes cannot be hashed with bcrypt');
  }
  const prefix = `$2b$${String(cost).padStart(2, '0')}$`;
  const input = secrets.map((s) => `${prefix}${bcryptSalt()} ${Buffer.from(s).toString('hex')}\n`).join('');
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('perl', ['-e', PERL], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', (e) => reject(new Error(`bcrypt: cannot run perl (Debian's perl-base): ${e.message}`)));
    p.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`bcrypt: perl exited ${code}: ${stderr}`)),
    );
    p.stdin.end(input);
  });
  const hashes = out.split('\n').slice(0, secrets.length);
  if (hashes.length !== secrets.length || hashes.some((h) => !h.startsWith(prefix) || h.length !== 60)) {
    throw new Error("bcrypt: the system's crypt() did not produce bcrypt hashes (libxcrypt without bcrypt?)");
  }
  return hashes;
}

export async function bcryptHash(secret: string, cost = MACHINE_BCRYPT_COST): Promise<string> {
  const [h] = await bcryptHashes([secret], cost);
  return h as string;
}
