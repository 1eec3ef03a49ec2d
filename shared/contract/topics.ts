/**
 * The MQTT topic tree, as code. One versioned namespace, the device id as
 * the level after it:
 *
 *   callbox/v1/<deviceId>/...      a box's own subtree
 *   callbox/v1/_claim/<serial>/... a new box asking to be provisioned
 *   callbox/v1/_ops/<user>/...     an ops user's requests to the fleet
 *
 * Device ids cannot start with "_", so the special subtrees never collide
 * with a box. The broker's ACL is derived from this table (see aclFor*),
 * so the documentation, the code and the broker agree.
 */
import { DEVICE_ID_PATTERN, SERIAL_PATTERN } from '../ids.js';

export const NAMESPACE = 'callbox/v1';
export const OPS_USER_PATTERN = '^[a-z][a-z0-9._-]{1,63}$';

export type Direction = 'box->fleet' | 'fleet->box' | 'ops->fleet' | 'fleet->ops';
export type Qos = 0 | 1;

export interface TopicSpec {
  key: TopicKey;
  /** Topic with {deviceId}, {serial} or {user} placeholders. */
  pattern: string;
  direction: Direction;
  qos: Qos;
  retained: boolean;
  /** Name of the message schema in docs/PROTOCOL.md. */
  message: string;
  description: string;
}

export type TopicKey =
  | 'status'
  | 'events'
  | 'receipt'
  | 'telemetry'
  | 'configDesired'
  | 'configReported'
  | 'cmdReq'
  | 'cmdRes'
  | 'fleetReq'
  | 'fleetRes'
  | 'voicemailChunk'
  | 'voicemailAck'
  | 'updateOffer'
  | 'updateProgress'
  | 'claimReq'
  | 'claimRes'
  | 'opsReq'
  | 'opsRes';

const D = `${NAMESPACE}/{deviceId}`;

export const TOPICS: readonly TopicSpec[] = [
  {
    key: 'status',
    pattern: `${D}/status`,
    direction: 'box->fleet',
    qos: 1,
    retained: true,
    message: 'Status',
    description: 'online/offline; the box sets a retained last will of state "offline"',
  },
  {
    key: 'events',
    pattern: `${D}/events`,
    direction: 'box->fleet',
    qos: 1,
    retained: false,
    message: 'EventBatch',
    description:
      'the durable outbox in sequence order, one or many events per message; the fleet applies each id once (see Delivery)',
  },
  {
    key: 'receipt',
    pattern: `${D}/events/receipt`,
    direction: 'fleet->box',
    qos: 1,
    retained: false,
    message: 'Receipt',
    description: 'after a commit: every event up to seq is stored; only now may the box forget them (see Delivery)',
  },
  {
    key: 'telemetry',
    pattern: `${D}/telemetry`,
    direction: 'box->fleet',
    qos: 0,
    retained: false,
    message: 'Telemetry',
    description: 'periodic health figures; the newest supersedes the rest',
  },
  {
    key: 'configDesired',
    pattern: `${D}/config/desired`,
    direction: 'fleet->box',
    qos: 1,
    retained: true,
    message: 'ConfigDesired',
    description: 'the versioned settings the box should run',
  },
  {
    key: 'configReported',
    pattern: `${D}/config/reported`,
    direction: 'box->fleet',
    qos: 1,
    retained: true,
    message: 'ConfigReported',
    description: 'the version the box applied, or the version it refused and why',
  },
  {
    key: 'cmdReq',
    pattern: `${D}/cmd/req`,
    direction: 'fleet->box',
    qos: 1,
    retained: false,
    message: 'Request (device command)',
    description: 'a command for the box; the reply goes to cmd/res with the same id',
  },
  {
    key: 'cmdRes',
    pattern: `${D}/cmd/res`,
    direction: 'box->fleet',
    qos: 1,
    retained: false,
    message: 'Response',
    description: 'the box answers a command',
  },
  {
    key: 'fleetReq',
    pattern: `${D}/fleet/req`,
    direction: 'box->fleet',
    qos: 1,
    retained: false,
    message: 'Request (box to fleet)',
    description: 'the box asks the fleet (full configuration, upload state)',
  },
  {
    key: 'fleetRes',
    pattern: `${D}/fleet/res`,
    direction: 'fleet->box',
    qos: 1,
    retained: false,
    message: 'Response',
    description: 'the fleet answers the box',
  },
  {
    key: 'voicemailChunk',
    pattern: `${D}/voicemail/chunk`,
    direction: 'box->fleet',
    qos: 1,
    retained: false,
    message: 'VoicemailChunk',
    description: 'one chunk of a recording, resumable by index',
  },
  {
    key: 'voicemailAck',
    pattern: `${D}/voicemail/ack`,
    direction: 'fleet->box',
    qos: 1,
    retained: false,
    message: 'VoicemailAck',
    description: 'complete (with the verified checksum), or the chunks still missing',
  },
  {
    key: 'updateOffer',
    pattern: `${D}/update/offer`,
    direction: 'fleet->box',
    qos: 1,
    retained: true,
    message: 'UpdateOffer',
    description: 'the release this box should run (over-the-air update); an empty retained message withdraws it',
  },
  {
    key: 'updateProgress',
    pattern: `${D}/update/progress`,
    direction: 'box->fleet',
    qos: 1,
    retained: true,
    message: 'UpdateProgress',
    description: 'where the box is with the offered release: downloading … healthy, or rolled_back / failed and why',
  },
  {
    key: 'claimReq',
    pattern: `${NAMESPACE}/_claim/{serial}/req`,
    direction: 'box->fleet',
    qos: 1,
    retained: false,
    message: 'ClaimRequest',
    description: 'a new box, logged in with its factory claim credential, asks to be provisioned',
  },
  {
    key: 'claimRes',
    pattern: `${NAMESPACE}/_claim/{serial}/res`,
    direction: 'fleet->box',
    qos: 1,
    retained: false,
    message: 'ClaimResponse',
    description: 'approved (device id and credentials), pending or rejected',
  },
  {
    key: 'opsReq',
    pattern: `${NAMESPACE}/_ops/{user}/req`,
    direction: 'ops->fleet',
    qos: 1,
    retained: false,
    message: 'Request (ops)',
    description: 'an ops request (provisioning, clinics, configuration, commands)',
  },
  {
    key: 'opsRes',
    pattern: `${NAMESPACE}/_ops/{user}/res`,
    direction: 'fleet->ops',
    qos: 1,
    retained: false,
    message: 'Response',
    description: 'the fleet answers an ops request',
  },
];

const BY_KEY = new Map(TOPICS.map((t) => [t.key, t]));

export function topicSpec(key: TopicKey): TopicSpec {
  const t = BY_KEY.get(key);
  if (!t) throw new Error(`no topic ${key}`);
  return t;
}

const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);
const serialRe = new RegExp(SERIAL_PATTERN);
const userRe = new RegExp(OPS_USER_PATTERN);

function fill(pattern: string, vars: Record<string, string>): string {
  return pattern.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`topic ${pattern} needs ${k}`);
    return v;
  });
}

function checked(kind: string, re: RegExp, value: string): string {
  if (!re.test(value)) throw new Error(`${kind} "${value}" does not match ${re.source}`);
  return value;
}

/** Topics of one box. */
export function deviceTopics(deviceId: string) {
  checked('device id', deviceIdRe, deviceId);
  const t = (key: TopicKey) => fill(topicSpec(key).pattern, { deviceId });
  return {
    root: `${NAMESPACE}/${deviceId}`,
    status: t('status'),
    events: t('events'),
    receipt: t('receipt'),
    telemetry: t('telemetry'),
    configDesired: t('configDesired'),
    configReported: t('configReported'),
    cmdReq: t('cmdReq'),
    cmdRes: t('cmdRes'),
    fleetReq: t('fleetReq'),
    fleetRes: t('fleetRes'),
    voicemailChunk: t('voicemailChunk'),
    voicemailAck: t('voicemailAck'),
    updateOffer: t('updateOffer'),
    updateProgress: t('updateProgress'),
  };
}
export type DeviceTopics = ReturnType<typeof deviceTopics>;

export function claimTopics(serial: string) {
  checked('serial', serialRe, serial);
  return {
    req: fill(topicSpec('claimReq').pattern, { serial }),
    res: fill(topicSpec('claimRes').pattern, { serial }),
  };
}

export function opsTopics(user: string) {
  checked('ops user', userRe, user);
  return { req: fill(topicSpec('opsReq').pattern, { user }), res: fill(topicSpec('opsRes').pattern, { user }) };
}

/** Wildcard subscriptions the fleet uses. */
export const FLEET_SUBSCRIPTIONS = {
  status: `${NAMESPACE}/+/status`,
  events: `${NAMESPACE}/+/events`,
  /** Receipts other fleet workers send (several workers share the boxes' batches). */
  receipts: `${NAMESPACE}/+/events/receipt`,
  telemetry: `${NAMESPACE}/+/telemetry`,
  configReported: `${NAMESPACE}/+/config/reported`,
  cmdRes: `${NAMESPACE}/+/cmd/res`,
  fleetReq: `${NAMESPACE}/+/fleet/req`,
  voicemailChunk: `${NAMESPACE}/+/voicemail/chunk`,
  updateProgress: `${NAMESPACE}/+/update/progress`,
  claimReq: `${NAMESPACE}/_claim/+/req`,
  opsReq: `${NAMESPACE}/_ops/+/req`,
} as const;

export interface ParsedTopic {
  key: TopicKey;
  deviceId?: string;
  serial?: string;
  user?: string;
}

/** Which contract topic a concrete topic is, with its variables; undefined if none. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts[0] !== 'callbox' || parts[1] !== 'v1' || parts.length < 4) return undefined;
  const rest = parts.slice(3).join('/');
  const who = parts[2] ?? '';
  if (who === '_claim' || who === '_ops') {
    const id = parts[3] ?? '';
    const tail = parts.slice(4).join('/');
    if (who === '_claim' && serialRe.test(id) && (tail === 'req' || tail === 'res')) {
      return { key: tail === 'req' ? 'claimReq' : 'claimRes', serial: id };
    }
    if (who === '_ops' && userRe.test(id) && (tail === 'req' || tail === 'res')) {
      return { key: tail === 'req' ? 'opsReq' : 'opsRes', user: id };
    }
    return undefined;
  }
  if (!deviceIdRe.test(who)) return undefined;
  for (const spec of TOPICS) {
    if (spec.pattern.startsWith(`${D}/`) && spec.pattern.slice(D.length + 1) === rest) {
      return { key: spec.key, deviceId: who };
    }
  }
  return undefined;
}

// ---- ACL derived from the table -------------------------------------------------

export type Identity =
  | { kind: 'device'; deviceId: string }
  | { kind: 'claim'; serial: string }
  | { kind: 'ops'; user: string }
  | { kind: 'fleet' };

function publishes(identity: Identity, spec: TopicSpec): boolean {
  switch (identity.kind) {
    case 'device':
      return spec.direction === 'box->fleet' && spec.pattern.startsWith(`${D}/`);
    case 'claim':
      return spec.key === 'claimReq';
    case 'ops':
      return spec.key === 'opsReq';
    case 'fleet':
      return true;
  }
}

function subscribes(identity: Identity, spec: TopicSpec): boolean {
  switch (identity.kind) {
    case 'device':
      return spec.direction === 'fleet->box' && spec.pattern.startsWith(`${D}/`);
    case 'claim':
      return spec.key === 'claimRes';
    case 'ops':
      return spec.key === 'opsRes';
    case 'fleet':
      return true;
  }
}

function ownsTopic(identity: Identity, parsed: ParsedTopic): boolean {
  switch (identity.kind) {
    case 'device':
      return parsed.deviceId === identity.deviceId;
    case 'claim':
      return parsed.serial === identity.serial;
    case 'ops':
      return parsed.user === identity.user;
    case 'fleet':
      return true;
  }
}

/** May this identity publish on this concrete topic? */
export function mayPublish(identity: Identity, topic: string): boolean {
  if (identity.kind === 'fleet') return !topic.startsWith('$');
  const parsed = parseTopic(topic);
  if (!parsed) return false;
  return ownsTopic(identity, parsed) && publishes(identity, topicSpec(parsed.key));
}

/** May a message on this topic be retained? Only where the contract says so (status, configuration). */
export function mayRetain(topic: string): boolean {
  const parsed = parseTopic(topic);
  return !!parsed && topicSpec(parsed.key).retained;
}

/**
 * May this identity subscribe to this filter? Wildcards are allowed only for
 * the fleet; others subscribe to their own concrete topics.
 */
export function maySubscribe(identity: Identity, filter: string): boolean {
  if (identity.kind === 'fleet') return !filter.startsWith('$') || filter.startsWith('$share/');
  if (filter.includes('+') || filter.includes('#') || filter.startsWith('$')) return false;
  const parsed = parseTopic(filter);
  if (!parsed) return false;
  return ownsTopic(identity, parsed) && subscribes(identity, topicSpec(parsed.key));
}

/** Concrete topics an identity may publish to and subscribe to (for Mosquitto ACL files, docs). */
export function aclFor(identity: Exclude<Identity, { kind: 'fleet' }>): { publish: string[]; subscribe: string[] } {
  const vars: Record<string, string> =
    identity.kind === 'device'
      ? { deviceId: identity.deviceId }
      : identity.kind === 'claim'
        ? { serial: identity.serial }
        : { user: identity.user };
  const applicable = TOPICS.filter((s) => {
    try {
      fill(s.pattern, vars);
      return true;
    } catch {
      return false;
    }
  });
  return {
    publish: applicable.filter((s) => publishes(identity, s)).map((s) => fill(s.pattern, vars)),
    subscribe: applicable.filter((s) => subscribes(identity, s)).map((s) => fill(s.pattern, vars)),
  };
}

/** Does an MQTT topic filter (with + and #) match a concrete topic? ($share/<group>/ is stripped.) */
export function topicMatches(filter: string, topic: string): boolean {
  let f = filter;
  if (f.startsWith('$share/')) f = f.split('/').slice(2).join('/');
  const fp = f.split('/');
  const tp = topic.split('/');
  for (let i = 0; i < fp.length; i++) {
    const p = fp[i];
    if (p === '#') return i > 0 || !topic.startsWith('$');
    if (i >= tp.length) return false;
    if (p === '+') {
      if (i === 0 && topic.startsWith('$')) return false;
      continue;
    }
    if (p !== tp[i]) return false;
  }
  return fp.length === tp.length;
}

/** The reply topic paired with a request topic (…/req -> …/res). */
export function replyTopicOf(requestTopic: string): string {
  if (!requestTopic.endsWith('/req')) throw new Error(`${requestTopic} is not a request topic`);
  return `${requestTopic.slice(0, -4)}/res`;
}

// ---- MQTT usernames -----------------------------------------------------------------
// device: "<deviceId>"; a new box: "claim:<SERIAL>" (password = claim secret
// from the label); ops: "ops:<user>"; the fleet's own clients: "fleet:<name>".

export function usernameFor(identity: Identity | { kind: 'fleet'; name: string }): string {
  switch (identity.kind) {
    case 'device':
      return identity.deviceId;
    case 'claim':
      return `claim:${identity.serial}`;
    case 'ops':
      return `ops:${identity.user}`;
    case 'fleet':
      return `fleet:${'name' in identity ? identity.name : 'core'}`;
  }
}

/** The identity a username claims (still to be authenticated); undefined if it names none. */
export function identityOfUsername(username: string): Identity | undefined {
  if (username.startsWith('claim:')) {
    const serial = username.slice(6);
    return serialRe.test(serial) ? { kind: 'claim', serial } : undefined;
  }
  if (username.startsWith('ops:')) {
    const user = username.slice(4);
    return userRe.test(user) ? { kind: 'ops', user } : undefined;
  }
  if (username.startsWith('fleet:')) return { kind: 'fleet' };
  return deviceIdRe.test(username) ? { kind: 'device', deviceId: username } : undefined;
}
