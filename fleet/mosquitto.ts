/**
 * External-broker mode with Mosquitto (2.x): the same identities and ACL as
 * the embedded broker, through Mosquitto's dynamic-security plugin. (Its
 * password file cannot be used: our usernames contain ":" — claim:<SERIAL>,
 * ops:<user>, fleet:<name> — which the password file format forbids.)
 *
 * - generateMosquittoConfig() writes mosquitto.conf, dynamic-security.json
 *   (every active credential from the store, with the PBKDF2-SHA512 hash
 *   made when its secret was issued, and one role per identity whose ACLs
 *   are aclFor(identity) from the contract) and the fleet's own secret.
 * - DynsecSink keeps a running Mosquitto in step afterwards: new or
 *   replaced credentials and revocations go to $CONTROL/dynamic-security/v1
 *   (deleteClient disconnects the client at once).
 *
 * Nothing dropped silently: persistence is on (a folder beside the
 * configuration, saved every autosaveS and at shutdown), so the fleet's
 * persistent session and its queued events survive a Mosquitto restart;
 * the per-client queue (max_queued_messages / max_queued_bytes, global in
 * Mosquitto 2.x) is sized for the fleet's session (fleet config
 * mqtt.externalMaxQueuedMessages, default 1,000,000 events: 2,000 boxes at
 * 0.5 events/s for 16 minutes), and when it is full Mosquitto logs
 * "Outgoing messages are being dropped for client ..." (log_type notice,
 * on) and counts them in $SYS/broker/publish/messages/dropped, which the
 * fleet watches with $SYS/broker/store/messages/count (BrokerQueueWatch).
 *
 * Differences from the embedded broker (documented, by design): Mosquitto
 * has no per-client message rate limit, and cannot trust an unknown
 * serial's claim secret on first use — in external mode serials must be
 * registered with their claim secret before they can claim.
 */

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import { aclFor, identityOfUsername } from '../shared/contract/topics.js';
import { getLogger } from '../shared/log.js';
import { DEFAULT_MAX_ANSWER_BYTES } from '../shared/rpc.js';
import { mosquittoHash, newSecret } from './auth/password.js';
import type { CredentialSink } from './registry.js';
import type { Credential, Store } from './store/types.js';

const log = getLogger('fleet:mosquitto');

const PLUGIN_PATHS = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
];

export function findDynsecPlugin(): string {
  const found = PLUGIN_PATHS.find((p) => existsSync(p));
  if (!found) throw new Error(`Mosquitto's dynamic-security plugin not found (looked in ${PLUGIN_PATHS.join(', ')})`);
  return found;
}

interface Acl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
  priority?: number;
}

export function rolesFor(username: string): Acl[] {
  const identity = identityOfUsername(username);
  if (!identity) return [];
  if (identity.kind === 'fleet') {
    const all = ['callbox/v1/#', '$CONTROL/dynamic-security/#'];
    return [
      ...(all.flatMap((topic) => [
        { acltype: 'publishClientSend', topic, allow: true },
        { acltype: 'publishClientReceive', topic, allow: true },
        { acltype: 'subscribePattern', topic, allow: true },
      ]) as Acl[]),
      // several fleet workers share box events and requests (ingest.source shared): Mosquitto checks the $share filter
      { acltype: 'subscribePattern', topic: '$share/fleet/callbox/v1/#', allow: true },
      // the broker's own figures (queue fill, drops), read only
      { acltype: 'subscribePattern', topic: '$SYS/broker/#', allow: true },
      { acltype: 'publishClientReceive', topic: '$SYS/broker/#', allow: true },
    ];
  }
  const acl = aclFor(identity);
  return [
    ...acl.publish.map((topic): Acl => ({ acltype: 'publishClientSend', topic, allow: true })),
    ...acl.subscribe.flatMap((topic): Acl[] => [
      { acltype: 'subscribePattern', topic, allow: true },
      { acltype: 'publishClientReceive', topic, allow: true },
    ]),
  ];
}

function splitHash(h: string): { password: string; salt: string; iterations: number } | undefined {
  const m = /^\$7\$(\d+)\$([^$]+)\$([^$]+)$/.exec(h);
  return m ? { iterations: Number(m[1]), salt: m[2] as string, password: m[3] as string } : undefined;
}

export interface MosquittoConfigOptions {
  dir: string;
  port: number;
  host?: string;
  maxPacketBytes?: number;
  /** Fleet client secret; generated if absent. */
  fleetSecret?: string;
  fleetUsername?: string;
  /**
   * More fleet workers, each with its own login fleet:<worker> and secret
   * file fleet-<worker>.secret (Mosquitto binds client ids to logins, so
   * workers sharing one login would throw each other off).
   */
  fleetWorkers?: string[];
  /** max_queued_messages (per client; see the header). */
  maxQueuedMessages?: number;
  /** max_queued_bytes (per client). */
  maxQueuedBytes?: number;
  /** Persistence is saved every this many seconds (and at shutdown). */
  autosaveS?: number;
  /** $SYS figures are published every this many seconds. */
  sysIntervalS?: number;
  /**
   * The system user Mosquitto runs as (started as root it drops to this user,
   * who must be able to read the 0600 files written here); default: the
   * user running this generator.
   */
  runAs?: string;
}

export interface GeneratedMosquittoConfig {
  confFile: string;
  dynsecFile: string;
  fleetSecretFile: string;
  fleetUsername: string;
  fleetSecret: string;
  /** The workers' logins and secret files (fleetWorkers). */
  workers: { username: string; secretFile: string }[];
  clients: number;
}

/** Write a Mosquitto configuration equivalent to the embedded broker's rules for everything in the store. */
export async function generateMosquittoConfig(
  store: Store,
  o: MosquittoConfigOptions,
): Promise<GeneratedMosquittoConfig> {
  const dir = resolve(o.dir);
  mkdirSync(dir, { recursive: true });
  const fleetUsername = o.fleetUsername ?? 'fleet:core';
  const fleetSecret = o.fleetSecret ?? newSecret();
  const workers = (o.fleetWorkers ?? []).map((name) => {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(name)) {
      throw new Error(`fleet worker name ${JSON.stringify(name)}: lowercase letters, digits and dashes, up to 32`);
    }
    return { username: `fleet:${name}`, secretFile: join(resolve(o.dir), `fleet-${name}.secret`), secret: newSecret() };
  });
  const creds: Pick<Credential, 'username' | 'mosquittoHash'>[] = [
    ...(await store.listActiveCredentials()),
    { username: fleetUsername, mosquittoHash: mosquittoHash(fleetSecret) },
    ...workers.map((w) => ({ username: w.username, mosquittoHash: mosquittoHash(w.secret) })),
  ];
  const clients: unknown[] = [];
  const roles: unknown[] = [];
  let skipped = 0;
  for (const c of creds) {
    const h = c.mosquittoHash ? splitHash(c.mosquittoHash) : undefined;
    if (!h) {
      skipped++; // a claim secret trusted on first use by the embedded broker: no Mosquitto hash exists
      continue;
    }
    clients.push({ username: c.username, textName: c.username, ...h, roles: [{ rolename: `r:${c.username}` }] });
    roles.push({ rolename: `r:${c.username}`, acls: rolesFor(c.username) });
  }
  if (skipped) log.warn({ skipped }, 'credentials without a Mosquitto hash left out (claim secrets seen on first use)');
  const dynsec = {
    clients,
    groups: [],
    roles,
    defaultACLAccess: { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: true },
  };
  const persistenceDir = join(dir, 'data');
  mkdirSync(persistenceDir, { recursive: true, mode: 0o700 });
  const dynsecFile = join(dir, 'dynamic-security.json');
  const confFile = join(dir, 'mosquitto.conf');
  const fleetSecretFile = join(dir, 'fleet.secret');
  writeFileSync(dynsecFile, JSON.stringify(dynsec, null, 2), { mode: 0o600 });
  writeFileSync(fleetSecretFile, `${fleetSecret}\n`, { mode: 0o600 });
  for (const w of workers) writeFileSync(w.secretFile, `${w.secret}\n`, { mode: 0o600 });
  writeFileSync(
    confFile,
    [
      '# Generated by `fleet mosquitto-config`: the Callbox topic ACL and identities for Mosquitto 2.x.',
      'per_listener_settings false',
      `user ${o.runAs ?? userInfo().username}`,
      'allow_anonymous false',
      `listener ${o.port} ${o.host ?? '127.0.0.1'}`,
      `plugin ${findDynsecPlugin()}`,
      `plugin_opt_config_file ${dynsecFile}`,
      // Mosquitto caps every client alike, the fleet included: leave room for the fleet's largest answer
      // (shared/rpc.ts DEFAULT_MAX_ANSWER_BYTES), or a long answer would cut the fleet off (docs/SECURITY.md).
      `max_packet_size ${Math.max(o.maxPacketBytes ?? 262_144, DEFAULT_MAX_ANSWER_BYTES) + 65_536}`,
      // Client ids bound to the login: no one takes over another's session.
      'use_username_as_clientid true',
      'max_keepalive 300',
      '# The fleet session holds every box event while the fleet is away: its queue is sized for that.',
      `max_queued_messages ${o.maxQueuedMessages ?? 1_000_000}`,
      `max_queued_bytes ${o.maxQueuedBytes ?? 1_073_741_824}`,
      '# The fleet reads $SYS/broker/store/messages/count and $SYS/broker/publish/messages/dropped.',
      `sys_interval ${o.sysIntervalS ?? 10}`,
      'persistence true',
      `persistence_location ${persistenceDir}/`,
      `autosave_interval ${o.autosaveS ?? 30}`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '# notice: "Outgoing messages are being dropped for client ..." when a queue is full',
      'log_type notice',
      '',
    ].join('\n'),
  );
  return {
    confFile,
    dynsecFile,
    fleetSecretFile,
    fleetUsername,
    fleetSecret,
    workers: workers.map(({ username, secretFile }) => ({ username, secretFile })),
    clients: clients.length,
  };
}

/** Keeps a running Mosquitto's dynamic security in step with the registry. */
export class DynsecSink implements CredentialSink {
  constructor(private readonly mqtt: () => MqttClient | undefined) {}

  private send(commands: unknown[]): Promise<void> {
    const client = this.mqtt();
    if (!client) return Promise.resolve();
    return new Promise((resolve) => {
      client.publish('$CONTROL/dynamic-security/v1', JSON.stringify({ commands }), { qos: 1 }, (err) => {
        if (err) log.warn({ err }, 'dynamic-security command not sent');
        resolve();
      });
    });
  }

  async put(cred: Credential, secret: string): Promise<void> {
    const rolename = `r:${cred.username}`;
    await this.send([
      { command: 'createRole', rolename, acls: rolesFor(cred.username) },
      { command: 'createClient', username: cred.username, password: secret, roles: [{ rolename }] },
      { command: 'setClientPassword', username: cred.username, password: secret },
    ]);
  }

  /**
   * Add the contract's current ACL to the roles of existing identities (at
   * fleet start): a configuration generated by an older version lacks topics
   * added since (the receipt topic: without it a box never hears its
   * receipts). An ACL already present is refused by Mosquitto and ignored.
   */
  async refreshAcls(usernames: string[]): Promise<number> {
    const commands = usernames.flatMap((username) =>
      rolesFor(username).map((acl) => ({ command: 'addRoleACL', rolename: `r:${username}`, ...acl })),
    );
    for (let i = 0; i < commands.length; i += 200) await this.send(commands.slice(i, i + 200));
    return commands.length;
  }

  async revoke(username: string): Promise<void> {
    await this.send([{ command: 'deleteClient', username }]);
  }
}
