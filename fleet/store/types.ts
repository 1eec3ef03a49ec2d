/**
 * The fleet store: one interface, two implementations (SQLite by default,
 * PostgreSQL at scale), both held to one conformance suite
 * (test/helpers/store-conformance.ts). Everything the fleet keeps goes through it:
 * the registry (organisations, clinics, boxes, ops users, credentials),
 * versioned desired configuration, the audit log and the event store.
 *
 * Rules every implementation keeps:
 * - times are ISO 8601 strings in UTC ("2026-11-26T09:15:00.000Z");
 * - ids of organisations and clinics are UUIDv7 made by the caller's store
 *   call (never by the database), so both stores give the same shapes;
 * - insertEvents is idempotent by event id and writes a whole batch with
 *   one multi-row INSERT; it returns only the ids that were new;
 * - every stored event has a position (`pos`), given as it is written and
 *   increasing in the order events became visible (committed), so a
 *   consumer that reads "after position p" never misses one stored later
 *   with a lower position (PostgreSQL: event inserts take one advisory
 *   lock, so positions are handed out and committed in the same order);
 * - an event cursor is a consumer's durable position (a Kafka consumer
 *   group's offset): held by one owner at a time under a lease, moved only
 *   by its owner from the position it read (compare and set);
 * - "not found" on an update is a CallboxError NotFound; a duplicate key on
 *   a create is Conflict; nothing else is changed when either is thrown.
 */
import type { Static } from '@sinclair/typebox';
import type { AnyEvent, EventType } from '../../shared/contract/events.js';
import type { TelemetryPointSchema } from '../../shared/contract/figures-ops.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';

export type ClaimState = 'registered' | 'pending' | 'approved' | 'rejected' | 'decommissioned';

/** clinic: a clinic manager, bound to one clinic (OpsUser.clinicId): sees and acts on that clinic only. */
export type OpsRole = 'viewer' | 'operator' | 'admin' | 'clinic';

export interface Organisation {
  id: string;
  name: string;
  createdAt: string;
}

export interface Contact {
  name: string;
  role?: string;
  phone?: string;
  email?: string;
}

export interface Clinic {
  id: string;
  organisationId: string | null;
  name: string;
  timezone: string;
  /** The clinic's own lines (E.164). */
  phoneNumbers: string[];
  /** Where calls roll over to (E.164), or null. */
  answeringService: string | null;
  contacts: Contact[];
  /**
   * Settings every box of the clinic starts from (a part of DeviceSettings: hours, calls, rollover...), merged
   * under each box's own settings field by field; null: none.
   */
  boxDefaults?: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

export type NewClinic = Omit<Clinic, 'id' | 'createdAt' | 'updatedAt'>;
export type ClinicPatch = Partial<Omit<Clinic, 'id' | 'createdAt' | 'updatedAt'>>;

export interface Box {
  serial: string;
  /** Chosen at approval; null while registered/pending. */
  deviceId: string | null;
  claimState: ClaimState;
  clinicId: string | null;
  model: string | null;
  firmware: string | null;
  /** Latest desired configuration version (0: none). */
  desiredVersion: number;
  /** Version the box last reported applied, or null. */
  reportedVersion: number | null;
  /** The box's last report: applied or refused, and why. */
  reportedState: 'applied' | 'refused' | null;
  reportedReason: string | null;
  lastSeenAt: string | null;
  online: boolean;
  /** Id of the box's latest claim request (to answer it on approval). */
  lastClaimRequestId: string | null;
  /** The newest telemetry sample (kept by fleet/figures); absent until one came. */
  telemetry?: Static<typeof TelemetryPointSchema> | null;
  createdAt: string;
  updatedAt: string;
}

export type BoxPatch = Partial<Omit<Box, 'serial' | 'createdAt' | 'updatedAt' | 'telemetry'>>;

export interface BoxFilter {
  clinicId?: string;
  claimState?: ClaimState;
  /** Only serials after this one (paging in serial order). */
  after?: string;
  /** At most this many (default: all). */
  limit?: number;
}

/** A page of a list in key order: the key to start after, and at most how many (default: all). */
export interface Page {
  after?: string;
  limit?: number;
}

export type CredentialKind = 'device' | 'claim' | 'ops' | 'fleet';

/**
 * An MQTT login. `hash` is our scrypt hash (fleet/auth/password.ts), checked
 * by the embedded broker; `mosquittoHash` is the same secret in Mosquitto's
 * password-file form ($7$, PBKDF2-SHA512) for external mode. Plain secrets
 * are never stored.
 */
export interface Credential {
  username: string;
  kind: CredentialKind;
  /** deviceId, serial, ops user name or fleet client name. */
  subject: string;
  hash: string;
  mosquittoHash: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export interface OpsUser {
  name: string;
  role: OpsRole;
  /** The clinic of a clinic user (role 'clinic'); null for the others. */
  clinicId: string | null;
  createdAt: string;
  disabledAt: string | null;
}

export interface DesiredConfig {
  deviceId: string;
  version: number;
  settings: DeviceSettings;
  /** The box's own settings as ops gave them, merged over its clinic's defaults into `settings` (null: none kept). */
  own?: Record<string, unknown> | null;
  createdBy: string;
  createdAt: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  /** "ops:alice", "fleet", "claim:<SERIAL>". */
  actor: string;
  /** Method or action, e.g. "clinics.update". */
  action: string;
  /** "clinic:<id>", "box:<serial>". */
  target: string;
  before: unknown;
  after: unknown;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'> & { at?: string };

export interface AuditFilter {
  target?: string;
  actor?: string;
  /** Only entries older than this id (paging newest first). */
  beforeId?: number;
  limit?: number;
}

export interface StoredEvent {
  id: string;
  deviceId: string;
  bootId: string;
  seq: number;
  type: EventType;
  /** When it happened on the box clock (normalised to UTC). */
  at: string;
  /** When the fleet stored it. */
  receivedAt: string;
  body: AnyEvent['body'];
}

/** A stored event with its position in the order of storing. */
export interface PositionedEvent extends StoredEvent {
  pos: number;
}

/** A consumer's durable position over stored events, and who holds it. */
export interface EventCursor {
  name: string;
  /** Every event at or before this position has been handled by the consumer. */
  pos: number;
  owner: string | null;
  leaseUntil: string | null;
  updatedAt: string;
}

export interface EventFilter {
  deviceId?: string;
  type?: EventType;
  /** Events stored at or after this time. */
  since?: string;
  /** Only ids greater than this (paging in id order). */
  afterId?: string;
  /** Only ids smaller than this (paging newest first). */
  beforeId?: string;
  /** Default 100, at most 10 000. */
  limit?: number;
  /** Default 'desc' (newest first). */
  order?: 'asc' | 'desc';
}

/** A run of missing sequence numbers for a box, [fromSeq, toSeq] inclusive. */
export interface SeqGap {
  deviceId: string;
  fromSeq: number;
  toSeq: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  /** Apply every pending up-migration (safe to call at every start). */
  migrate(): Promise<void>;
  /** Undo migrations down to `version` (0: empty database). */
  migrateDown(version: number): Promise<void>;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;

  // organisations and clinics
  createOrganisation(name: string): Promise<Organisation>;
  listOrganisations(page?: Page): Promise<Organisation[]>;
  createClinic(clinic: NewClinic): Promise<Clinic>;
  updateClinic(id: string, patch: ClinicPatch): Promise<Clinic>;
  getClinic(id: string): Promise<Clinic | undefined>;
  listClinics(filter?: { organisationId?: string } & Page): Promise<Clinic[]>;

  // boxes
  /** Create a box by serial; Conflict if the serial exists. */
  createBox(box: {
    serial: string;
    claimState: ClaimState;
    clinicId?: string | null;
    model?: string | null;
  }): Promise<Box>;
  updateBox(serial: string, patch: BoxPatch): Promise<Box>;
  /** Seal patient fields of event bodies with this cipher from now on (reads open sealed and plain alike). */
  usePatientCipher(cipher: import('../crypto/patient-data.js').PatientCipher): void;
  /** Delete a box still pending (an expired claim); false if it is not there or not pending. */
  deletePendingBox(serial: string): Promise<boolean>;
  getBox(serial: string): Promise<Box | undefined>;
  getBoxByDeviceId(deviceId: string): Promise<Box | undefined>;
  listBoxes(filter?: BoxFilter): Promise<Box[]>;
  /** Record presence for many boxes at once (last seen, online). */
  touchBoxes(updates: { deviceId: string; lastSeenAt: string; online: boolean }[]): Promise<void>;

  // credentials
  putCredential(cred: Omit<Credential, 'createdAt' | 'revokedAt'>): Promise<Credential>;
  getCredential(username: string): Promise<Credential | undefined>;
  /** Every credential not revoked (what the broker loads). */
  listActiveCredentials(): Promise<Credential[]>;
  /** Mark revoked; returns false if there was none active. */
  revokeCredential(username: string): Promise<boolean>;

  // ops users
  createOpsUser(user: { name: string; role: OpsRole; clinicId?: string | null }): Promise<OpsUser>;
  getOpsUser(name: string): Promise<OpsUser | undefined>;
  listOpsUsers(): Promise<OpsUser[]>;

  // configuration
  /** Store a new desired version (previous + 1) and bump the box's desiredVersion. */
  putDesiredConfig(
    deviceId: string,
    settings: DeviceSettings,
    createdBy: string,
    own?: Record<string, unknown> | null,
  ): Promise<DesiredConfig>;
  getDesiredConfig(deviceId: string, version?: number): Promise<DesiredConfig | undefined>;
  /** The newest desired configuration of every box that has one. */
  listLatestDesiredConfigs(): Promise<DesiredConfig[]>;

  // audit
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  listAudit(filter?: AuditFilter): Promise<AuditEntry[]>;

  // events
  /** One multi-row INSERT, ignoring ids already stored. Returns the ids that were new. */
  insertEvents(events: AnyEvent[], receivedAt?: string): Promise<string[]>;
  listEvents(filter?: EventFilter): Promise<StoredEvent[]>;
  countEvents(filter?: { deviceId?: string }): Promise<number>;
  /** Highest stored sequence number per box (0 if none). */
  maxSeq(deviceId: string): Promise<number>;
  /** Missing sequence numbers between stored events (computed from the events). */
  findGaps(deviceId?: string): Promise<SeqGap[]>;

  // event cursors (durable consumers of stored events)
  /** Events stored after position `afterPos`, oldest first (default 500, at most 10 000). */
  readEventsAfter(afterPos: number, limit?: number): Promise<PositionedEvent[]>;
  /** The position of the newest stored event (0 if none). */
  eventsHead(): Promise<number>;
  /**
   * Take or renew the lease on cursor `name` for `owner` until `until`, if it is free, expired at `now` or
   * already ours. A cursor that does not exist yet is made at position 0 (the first event). Returns the
   * cursor, or undefined if another owner holds it.
   */
  claimCursor(name: string, owner: string, now: string, until: string): Promise<EventCursor | undefined>;
  /** Move the cursor from `from` to `to` (renewing the lease) if `owner` still holds it at `from`. */
  advanceCursor(
    name: string,
    c: { owner: string; from: number; to: number; now: string; until: string },
  ): Promise<boolean>;
  /** Give the lease up (an orderly stop), keeping the position. */
  releaseCursor(name: string, owner: string): Promise<void>;
  getCursor(name: string): Promise<EventCursor | undefined>;

  // over-the-air updates (fleet/updates)
  /** Insert or replace a release by version. */
  putRelease(r: StoredRelease): Promise<void>;
  getRelease(version: string): Promise<StoredRelease | undefined>;
  listReleases(): Promise<StoredRelease[]>;
  /** A rollout and its boxes (none offered yet), in one transaction. */
  createRollout(r: Rollout, boxes: { deviceId: string; rank: number }[]): Promise<void>;
  getRollout(id: string): Promise<Rollout | undefined>;
  listRollouts(filter?: { state?: Rollout['state'] }): Promise<Rollout[]>;
  updateRollout(id: string, patch: Partial<Pick<Rollout, 'stage' | 'state' | 'pausedReason'>>): Promise<Rollout>;
  listRolloutBoxes(rolloutId: string): Promise<RolloutBox[]>;
  /** Update one box's progress; false if the box is not part of the rollout. */
  setRolloutBox(
    rolloutId: string,
    deviceId: string,
    patch: Partial<Pick<RolloutBox, 'state' | 'running' | 'bytes' | 'reason'>>,
  ): Promise<boolean>;
}

/** A signed release the fleet holds (the tarball itself is a file under updates.dir). */
export interface StoredRelease {
  version: string;
  program: string;
  arch: string;
  keyId: string;
  manifest: string;
  signature: string;
  sha256: string;
  totalBytes: number;
  receivedBytes: number;
  state: 'uploading' | 'ready';
  createdBy: string;
  createdAt: string;
}

export interface Rollout {
  id: string;
  version: string;
  stages: number[];
  stage: number;
  state: 'running' | 'paused' | 'done';
  pausedReason: string | null;
  failureMaxCount: number;
  failureMaxShare: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface RolloutBox {
  rolloutId: string;
  deviceId: string;
  rank: number;
  state: string | null;
  running: string | null;
  bytes: number | null;
  reason: string | null;
  updatedAt: string | null;
}
