/**
 * How to reach a running fleet, written by the fleet into its data folder
 * (<data.dir>/connection.json, mode 0600) once it serves, and read by the CLI when
 * no --url is given: the way tools read a kubeconfig. It names the broker
 * URL, the ops user and the file holding that user's password; never the
 * password itself.
 *
 * The CLI looks, in order: --url/--user/--password-file, then
 * CALLBOX_OPS_URL/CALLBOX_OPS_USER/CALLBOX_OPS_PASSWORD(_FILE), then
 * connection.json in --data-dir, CALLBOX_FLEET__DATA__DIR or ./var.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FleetConfig } from './config.js';

export const CONNECTION_FILE = 'connection.json';

export interface FleetConnection {
  service: 'callbox-fleet';
  /** The broker URL an ops tool on this machine connects to. */
  url: string;
  /** The ops user (without the ops: prefix). */
  user: string;
  /** Absolute path of the file holding that user's password (the first admin's, written at the first start). */
  passwordFile: string;
  /** The data folder, absolute. */
  dataDir: string;
  pid: number;
  startedAt: string;
}

/** The URL an ops tool on this machine uses for the fleet's broker. */
export function localBrokerUrl(
  config: FleetConfig,
  ports: { tcp: number | null; tls: number | null } | undefined,
  externalUrl: string,
): string {
  if (config.mqtt.mode !== 'embedded' || !ports) return externalUrl;
  const h = config.mqtt.host;
  const host = h === '0.0.0.0' || h === '::' || h === '' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
  if (ports.tcp !== null) return `mqtt://${host}:${ports.tcp}`;
  return `mqtts://${host === '127.0.0.1' ? 'localhost' : host}:${ports.tls}`;
}

/** Write <data.dir>/connection.json (0600, replaced atomically). Returns its path. */
export function writeConnectionFile(config: FleetConfig, url: string, now = new Date()): string {
  const dir = resolve(config.data.dir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, CONNECTION_FILE);
  const body: FleetConnection = {
    service: 'callbox-fleet',
    url,
    user: config.ops.bootstrapUser,
    passwordFile: resolve(config.ops.bootstrapPasswordFile),
    dataDir: dir,
    pid: process.pid,
    startedAt: now.toISOString(),
  };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/**
 * Read <dataDir>/connection.json: undefined when there is none; an Error naming the file when it is unreadable or
 * not a fleet's connection file.
 */
export function readConnectionFile(dataDir: string): FleetConnection | undefined {
  const file = join(dataDir, CONNECTION_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  let v: Partial<FleetConnection>;
  try {
    v = JSON.parse(text) as Partial<FleetConnection>;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (v?.service !== 'callbox-fleet' || typeof v.url !== 'string' || typeof v.user !== 'string') {
    throw new Error(`${file} is not a Callbox fleet connection file (expected service, url, user, passwordFile)`);
  }
  return v as FleetConnection;
}
