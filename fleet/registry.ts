/**
 * The registry's operations: provisioning (claims), clinics, box
 * assignment, configuration, credentials, decommissioning. Every change an
 * ops user (or the fleet itself) makes is written to the audit log with
 * before and after. The ops API (fleet/ops-api.ts) and the CLI go through
 * here; nothing else writes the registry.
 *
 * Claims: a new box logs in as claim:<SERIAL> with the secret from its
 * label and asks on _claim/<serial>/req.
 * - a serial registered in advance with the claim secret from its label
 *   (boxes.register) is approved at once; one registered without it waits
 *   for ops (claims.approve) like an unknown serial: whoever logged in
 *   first under that serial proved nothing;
 * - an unknown serial is recorded as a pending claim (its secret trusted on
 *   first use by the embedded broker) and waits for ops (claims.approve),
 *   after which the answer is published to the box;
 * - an approved box asking again (it lost its credentials, or they were
 *   rotated) gets new credentials at once; a rejected or decommissioned
 *   one is told so.
 * The device id is "cb-" + the serial in lower case.
 */

import type { MqttClient } from 'mqtt';
import type { ClaimRequest, ClaimResponse, ConfigDesired } from '../shared/contract/messages.js';
import { claimTopics, deviceTopics } from '../shared/contract/topics.js';
import { CallboxError, ErrorCode, isCallboxError } from '../shared/errors.js';
import { isSerial } from '../shared/ids.js';
import { getLogger } from '../shared/log.js';
import {
  DEFAULT_SCRYPT,
  HUMAN_PBKDF2_ITERATIONS,
  hashSecret,
  MACHINE_SCRYPT,
  mosquittoHashAsync,
  newSecret,
} from './auth/password.js';
import type { FleetBus } from './bus.js';
import { effectiveSettings } from './clinic-defaults.js';
import type { Box, Clinic, ClinicPatch, Credential, DesiredConfig, NewClinic, OpsRole, Store } from './store/types.js';

const log = getLogger('fleet:registry');

/** Where credentials go besides the store: the embedded broker, or the external broker's security config. */
export interface CredentialSink {
  /** A credential was made or replaced; `secret` is its plain value, known only at this moment. */
  put(cred: Credential, secret: string): Promise<void> | void;
  /**
   * Forget it and close its sessions at once; a claim username is also kept from being trusted on first
   * use again unless `block` is false.
   */
  revoke(username: string, reason: string, block?: boolean): Promise<void> | void;
  /** A claim that was waiting for ops is settled (approved or rejected); for the embedded broker's cap. */
  claimSettled?(serial: string): void;
}

export interface RegistryOptions {
  store: Store;
  bus: FleetBus;
  sink: CredentialSink;
  /** The fleet's MQTT client (for claim answers and retained configuration). */
  mqtt: () => MqttClient | undefined;
  caPem: string | null;
  publicUrl: string | null;
}

/** How long a claim answer is replayed to a repeated request of the same serial and id. */
export const CLAIM_ANSWER_TTL_MS = 5 * 60_000;

export function deviceIdForSerial(serial: string): string {
  return `cb-${serial.toLowerCase()}`;
}

function publishAsync(client: MqttClient | undefined, topic: string, payload: string, retain: boolean): Promise<void> {
  if (!client) return Promise.resolve();
  return new Promise((resolve) => {
    client.publish(topic, payload, { qos: 1, retain }, (err) => {
      if (err) log.warn({ err, topic }, 'publish failed (it is redone when the broker is back)');
      resolve();
    });
  });
}

export class Registry {
  /** Claim answers by serial (the claim identity): the request id and when it was answered. */
  private readonly claimAnswers = new Map<string, { id: string; at: number; answer: Promise<ClaimResponse> }>();

  constructor(private readonly o: RegistryOptions) {}

  private get store(): Store {
    return this.o.store;
  }

  private audit(actor: string, action: string, target: string, before: unknown, after: unknown) {
    return this.store.appendAudit({ actor, action, target, before: before ?? null, after: after ?? null });
  }

  /** A box by serial or device id, or NotFound naming what was asked. */
  async resolveBox(ref: string): Promise<Box> {
    const box = isSerial(ref) ? await this.store.getBox(ref) : await this.store.getBoxByDeviceId(ref);
    if (!box) {
      throw new CallboxError(
        ErrorCode.NotFound,
        `no box "${ref}": give a serial as on the label (upper case) or a device id (cb-...); list them with \`fleet boxes list\``,
      );
    }
    return box;
  }

  /**
   * A clinic by its id or its exact name. A name several clinics share is refused (Conflict) with the
   * candidates listed; an unknown one (NotFound) names clinics whose names come close.
   */
  async resolveClinic(ref: string): Promise<Clinic> {
    const byId = await this.store.getClinic(ref);
    if (byId) return byId;
    const all: Clinic[] = [];
    for (let after: string | undefined; ; ) {
      const page = await this.store.listClinics({ limit: 1000, ...(after ? { after } : {}) });
      all.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]?.id;
    }
    const exact = all.filter((c) => c.name === ref);
    if (exact.length === 1 && exact[0]) return exact[0];
    if (exact.length > 1) {
      throw new CallboxError(
        ErrorCode.Conflict,
        `clinic name "${ref}" is ambiguous: ${exact.length} clinics have it (${exact
          .map((c) => `${c.id} in ${c.timezone}`)
          .join('; ')}); give the clinic id instead`,
        { candidates: exact.map((c) => ({ id: c.id, name: c.name, timezone: c.timezone })) },
      );
    }
    const lower = ref.toLowerCase();
    const near = all.filter((c) => c.name.toLowerCase().includes(lower) || lower.includes(c.name.toLowerCase()));
    throw new CallboxError(
      ErrorCode.NotFound,
      `no clinic "${ref}" (by id or exact name)${
        near.length > 0
          ? `; did you mean ${near
              .slice(0, 5)
              .map((c) => `"${c.name}" (${c.id})`)
              .join(', ')}?`
          : ''
      }; list them with \`fleet clinics list\``,
    );
  }

  private async requireClinic(id: string): Promise<Clinic> {
    const c = await this.store.getClinic(id);
    if (!c) throw new CallboxError(ErrorCode.NotFound, `no clinic ${id}; list them with \`fleet clinics list\``);
    return c;
  }

  // ---- credentials -------------------------------------------------------------

  private async issue(
    kind: Credential['kind'],
    username: string,
    subject: string,
    secret: string,
  ): Promise<Credential> {
    const cred = await this.store.putCredential({
      username,
      kind,
      subject,
      hash: await hashSecret(secret, kind === 'device' || kind === 'fleet' ? MACHINE_SCRYPT : DEFAULT_SCRYPT),
      mosquittoHash: await mosquittoHashAsync(
        secret,
        kind === 'device' || kind === 'fleet' ? 101 : HUMAN_PBKDF2_ITERATIONS,
      ),
    });
    await this.o.sink.put(cred, secret);
    return cred;
  }

  private async revoke(username: string, reason: string, block = true): Promise<void> {
    await this.store.revokeCredential(username);
    await this.o.sink.revoke(username, reason, block);
  }

  /**
   * Forget claims of serials nobody registered that waited for ops longer than `maxAgeMs`: the box row
   * and the claim secret trusted on first use go, without blocking the serial (the real box may claim
   * anew). Returns how many.
   */
  async expireStaleClaims(maxAgeMs: number, now = Date.now()): Promise<number> {
    let n = 0;
    for (const box of await this.store.listBoxes({ claimState: 'pending' })) {
      if (now - Date.parse(box.updatedAt) < maxAgeMs) continue;
      if (await this.hasOpsClaimSecret(box.serial)) continue;
      if (!(await this.store.deletePendingBox(box.serial))) continue;
      await this.revoke(`claim:${box.serial}`, 'claim expired', false);
      await this.audit('fleet', 'claims.expire', `box:${box.serial}`, box, null);
      n++;
    }
    return n;
  }

  // ---- claims --------------------------------------------------------------------

  /** The broker saw an unknown serial's claim secret (trust on first use): record the pending claim. */
  async claimSeen(serial: string, hash: string): Promise<void> {
    const existing = await this.store.getCredential(`claim:${serial}`);
    if (!existing || existing.revokedAt) {
      await this.store.putCredential({
        username: `claim:${serial}`,
        kind: 'claim',
        subject: serial,
        hash,
        mosquittoHash: null,
      });
    }
    if (!(await this.store.getBox(serial))) {
      try {
        const box = await this.store.createBox({ serial, claimState: 'pending' });
        await this.audit(`claim:${serial}`, 'claims.request', `box:${serial}`, null, box);
      } catch (e) {
        // created at the same moment by the claim request itself
        if (!isCallboxError(e, ErrorCode.Conflict)) throw e;
      }
    }
  }

  /**
   * Answer a claim request. A repeated request (QoS 1 redelivery) gets the
   * first answer, even while it is being made, but only on the same claim
   * identity: the cache is keyed by serial (the topic's, which the broker
   * binds to the claim:<serial> login) and request id, one entry per serial
   * (a new id replaces the old), and an answer is replayed for at most
   * CLAIM_ANSWER_TTL_MS. So a box's credentials go only to a login that
   * proved that box's claim secret, on the one topic it alone may read.
   */
  handleClaim(req: ClaimRequest, now = Date.now()): Promise<ClaimResponse> {
    const cached = this.claimAnswers.get(req.serial);
    if (cached && cached.id === req.id && now - cached.at < CLAIM_ANSWER_TTL_MS) return cached.answer;
    const work = this.answerClaim(req);
    const entry = { id: req.id, at: now, answer: work };
    this.claimAnswers.delete(req.serial);
    this.claimAnswers.set(req.serial, entry);
    work.catch(() => {
      if (this.claimAnswers.get(req.serial) === entry) this.claimAnswers.delete(req.serial);
    });
    if (this.claimAnswers.size > 1000) this.claimAnswers.delete(this.claimAnswers.keys().next().value as string);
    return work;
  }

  private async answerClaim(req: ClaimRequest): Promise<ClaimResponse> {
    let box = await this.store.getBox(req.serial);
    let answer: ClaimResponse;
    if (!box) {
      try {
        box = await this.store.createBox({ serial: req.serial, claimState: 'pending', model: req.model });
        await this.audit(`claim:${req.serial}`, 'claims.request', `box:${req.serial}`, null, box);
      } catch (e) {
        // recorded at the same moment by the broker's first-use report
        if (!isCallboxError(e, ErrorCode.Conflict)) throw e;
      }
    }
    box = await this.store.updateBox(req.serial, {
      lastClaimRequestId: req.id,
      model: req.model,
      firmware: req.softwareVersion,
    });
    switch (box.claimState) {
      case 'registered':
        if (!(await this.hasOpsClaimSecret(req.serial))) {
          const before = box;
          box = await this.store.updateBox(req.serial, { claimState: 'pending' });
          await this.audit(`claim:${req.serial}`, 'claims.request', `box:${req.serial}`, before, box);
          answer = {
            v: 1,
            id: req.id,
            state: 'pending',
            reason: 'registered without its label secret: waiting for ops to approve this claim',
          };
          break;
        }
        answer = await this.approve(box, `claim:${req.serial}`, 'claims.autoApprove');
        break;
      case 'approved':
        answer = await this.approve(box, `claim:${req.serial}`, 'claims.reissue');
        break;
      case 'pending':
        answer = { v: 1, id: req.id, state: 'pending', reason: 'waiting for ops to approve this serial' };
        break;
      case 'rejected':
        answer = { v: 1, id: req.id, state: 'rejected', reason: 'this box was rejected by ops' };
        break;
      case 'decommissioned':
        answer = { v: 1, id: req.id, state: 'rejected', reason: 'this box was decommissioned' };
        break;
    }
    return answer;
  }

  /**
   * Did ops give this serial's claim secret (boxes.register with the label's secret), rather than the
   * broker trusting the first secret it saw? A secret ops issued has its Mosquitto form too (issue()); one
   * trusted on first use (claimSeen) has only the hash the broker made.
   */
  private async hasOpsClaimSecret(serial: string): Promise<boolean> {
    const cred = await this.store.getCredential(`claim:${serial}`);
    return !!cred && !cred.revokedAt && cred.mosquittoHash !== null;
  }

  /** Give a box its device id and a new secret; returns the claim answer (with the secret). */
  private async approve(box: Box, actor: string, action: string): Promise<ClaimResponse> {
    const deviceId = box.deviceId ?? deviceIdForSerial(box.serial);
    const secret = newSecret();
    await this.issue('device', deviceId, deviceId, secret);
    const after = await this.store.updateBox(box.serial, { deviceId, claimState: 'approved' });
    await this.audit(actor, action, `box:${box.serial}`, box, after);
    // A box of a clinic starts with the clinic's settings (time zone, hours, answering service, contacts).
    if (box.claimState !== 'approved' && after.clinicId) await this.applyClinicSettings(actor, after);
    if (box.claimState !== 'approved') this.o.bus.emit('box.approved', { box: after });
    this.o.sink.claimSettled?.(box.serial);
    log.info({ serial: box.serial, deviceId, action }, 'box credentials issued');
    return {
      v: 1,
      id: box.lastClaimRequestId ?? '00000000-0000-7000-8000-000000000000',
      state: 'approved',
      deviceId,
      username: deviceId,
      password: secret,
      caPem: this.o.caPem,
      brokerUrl: this.o.publicUrl,
    };
  }

  /**
   * Register and approve a serial at once and return its device credentials
   * (factory provisioning, where the credentials are written to the box
   * before it ships; also the benchmark).
   */
  async provision(actor: string, serial: string, clinicId?: string): Promise<{ deviceId: string; password: string }> {
    const box =
      (await this.store.getBox(serial)) ??
      (await this.registerBox(actor, { serial, ...(clinicId ? { clinicId } : {}) }));
    const answer = await this.approve(box, actor, 'boxes.provision');
    if (answer.state !== 'approved') throw new CallboxError(ErrorCode.Internal, 'approval failed');
    return { deviceId: answer.deviceId, password: answer.password };
  }

  async approveClaim(actor: string, serial: string, clinicId?: string): Promise<Box> {
    const box = await this.resolveBox(serial);
    if (box.claimState !== 'pending' && box.claimState !== 'registered') {
      throw new CallboxError(
        ErrorCode.Conflict,
        `box ${serial} is ${box.claimState}, not waiting for approval; list waiting claims with \`fleet claims list\``,
      );
    }
    if (clinicId) await this.requireClinic(clinicId);
    if (clinicId) await this.store.updateBox(serial, { clinicId });
    const answer = await this.approve({ ...box, clinicId: clinicId ?? box.clinicId }, actor, 'claims.approve');
    if (box.lastClaimRequestId) {
      await publishAsync(this.o.mqtt(), claimTopics(serial).res, JSON.stringify(answer), false);
    }
    return this.resolveBox(serial);
  }

  async rejectClaim(actor: string, serial: string, reason: string): Promise<Box> {
    const box = await this.resolveBox(serial);
    if (box.claimState !== 'pending' && box.claimState !== 'registered') {
      throw new CallboxError(
        ErrorCode.Conflict,
        `box ${serial} is ${box.claimState}; only a waiting claim can be rejected`,
      );
    }
    const after = await this.store.updateBox(serial, { claimState: 'rejected' });
    this.o.sink.claimSettled?.(serial);
    await this.audit(actor, 'claims.reject', `box:${serial}`, box, { ...after, reason });
    if (box.lastClaimRequestId) {
      const answer: ClaimResponse = { v: 1, id: box.lastClaimRequestId, state: 'rejected', reason };
      await publishAsync(this.o.mqtt(), claimTopics(serial).res, JSON.stringify(answer), false);
    }
    return after;
  }

  async registerBox(actor: string, p: { serial: string; claimSecret?: string; clinicId?: string }): Promise<Box> {
    if (p.clinicId) await this.requireClinic(p.clinicId);
    const existing = await this.store.getBox(p.serial);
    let box: Box;
    if (existing) {
      if (existing.claimState !== 'pending') {
        throw new CallboxError(ErrorCode.Conflict, `box ${p.serial} is already ${existing.claimState}`);
      }
      box = await this.store.updateBox(p.serial, {
        claimState: 'registered',
        clinicId: p.clinicId ?? existing.clinicId,
      });
    } else {
      box = await this.store.createBox({ serial: p.serial, claimState: 'registered', clinicId: p.clinicId ?? null });
    }
    if (p.claimSecret) await this.issue('claim', `claim:${p.serial}`, p.serial, p.claimSecret);
    await this.audit(actor, 'boxes.register', `box:${p.serial}`, existing ?? null, box);
    return box;
  }

  // ---- boxes ---------------------------------------------------------------------

  async assignBox(actor: string, ref: string, clinicId: string | null): Promise<Box> {
    const box = await this.resolveBox(ref);
    if (clinicId) await this.requireClinic(clinicId);
    const after = await this.store.updateBox(box.serial, { clinicId });
    await this.audit(actor, 'boxes.assign', `box:${box.serial}`, box, after);
    if (clinicId !== box.clinicId) this.o.bus.emit('box.assigned', { box: after });
    if (clinicId !== box.clinicId) await this.applyClinicSettings(actor, after);
    return after;
  }

  /**
   * Publish a box's settings again over its clinic's (now) settings: at approval, when it moves to another
   * clinic, when its clinic's defaults change. Its own settings (the newest ops gave) stay on top; a box whose
   * settings would not change gets no new version. Returns the new version, if any.
   */
  async applyClinicSettings(actor: string, box: Box): Promise<DesiredConfig | undefined> {
    if (box.claimState !== 'approved' || !box.deviceId) return undefined;
    const deviceId = box.deviceId;
    const clinic = box.clinicId ? await this.store.getClinic(box.clinicId) : undefined;
    const before = await this.store.getDesiredConfig(deviceId);
    // A box with no settings yet gets its clinic's once the clinic has box defaults (clinics.setDefaults); before
    // that it waits for its own (boxes.setConfig), which are merged over the clinic's.
    if (!before && !clinic?.boxDefaults) return undefined;
    const own = before?.own ?? (before ? (before.settings as unknown as Record<string, unknown>) : {});
    const settings = effectiveSettings(clinic, own, `settings for ${deviceId}`);
    if (before && JSON.stringify(before.settings) === JSON.stringify(settings)) return undefined;
    const cfg = await this.store.putDesiredConfig(deviceId, settings, actor, own);
    await this.audit(actor, 'boxes.clinicSettings', `box:${box.serial}`, before ?? null, cfg);
    await this.publishDesired(cfg);
    return cfg;
  }

  private requireActive(box: Box): string {
    if (box.claimState !== 'approved' || !box.deviceId) {
      throw new CallboxError(
        box.claimState === 'decommissioned' ? ErrorCode.DeviceDecommissioned : ErrorCode.ClaimPending,
        `box ${box.serial} is ${box.claimState}; it must be approved first`,
      );
    }
    return box.deviceId;
  }

  async setConfig(actor: string, ref: string, settings: unknown): Promise<DesiredConfig> {
    const box = await this.resolveBox(ref);
    const deviceId = this.requireActive(box);
    const clinic = box.clinicId ? await this.store.getClinic(box.clinicId) : undefined;
    // The box's own settings over its clinic's, field by field (fleet/clinic-defaults.ts).
    const own = structuredClone((settings ?? {}) as Record<string, unknown>);
    const valid = effectiveSettings(clinic, own, `settings for ${deviceId}`);
    const before = await this.store.getDesiredConfig(deviceId);
    const cfg = await this.store.putDesiredConfig(deviceId, valid, actor, own);
    await this.audit(actor, 'boxes.setConfig', `box:${box.serial}`, before ?? null, cfg);
    await this.publishDesired(cfg);
    return cfg;
  }

  static desiredMessage(cfg: DesiredConfig): ConfigDesired {
    return { v: 1, version: cfg.version, at: cfg.createdAt, settings: cfg.settings };
  }

  async publishDesired(cfg: DesiredConfig): Promise<void> {
    await publishAsync(
      this.o.mqtt(),
      deviceTopics(cfg.deviceId).configDesired,
      JSON.stringify(Registry.desiredMessage(cfg)),
      true,
    );
  }

  /** After a broker restart (retained messages lost): publish every box's newest desired configuration again. */
  async republishAllDesired(): Promise<number> {
    const all = await this.store.listLatestDesiredConfigs();
    let n = 0;
    for (const cfg of all) {
      const box = await this.store.getBoxByDeviceId(cfg.deviceId);
      if (box?.claimState !== 'approved') continue;
      await this.publishDesired(cfg);
      n++;
    }
    return n;
  }

  async rotateCredentials(actor: string, ref: string): Promise<Box> {
    const box = await this.resolveBox(ref);
    const deviceId = this.requireActive(box);
    await this.revoke(deviceId, 'credentials rotated');
    await this.audit(
      actor,
      'boxes.rotateCredentials',
      `box:${box.serial}`,
      { username: deviceId },
      { revoked: deviceId },
    );
    return box;
  }

  async decommission(actor: string, ref: string, reason: string): Promise<Box> {
    const box = await this.resolveBox(ref);
    if (box.deviceId) await this.revoke(box.deviceId, `decommissioned: ${reason}`);
    await this.revoke(`claim:${box.serial}`, `decommissioned: ${reason}`);
    const after = await this.store.updateBox(box.serial, { claimState: 'decommissioned', online: false });
    if (box.deviceId) await publishAsync(this.o.mqtt(), deviceTopics(box.deviceId).configDesired, '', true);
    await this.audit(actor, 'boxes.decommission', `box:${box.serial}`, box, { ...after, reason });
    this.o.bus.emit('box.decommissioned', { box: after });
    return after;
  }

  // ---- clinics, organisations, users -------------------------------------------------

  async createClinic(actor: string, c: NewClinic): Promise<Clinic> {
    if (c.organisationId && !(await this.store.listOrganisations()).some((o) => o.id === c.organisationId)) {
      throw new CallboxError(ErrorCode.NotFound, `no organisation ${c.organisationId}`);
    }
    const clinic = await this.store.createClinic(c);
    await this.audit(actor, 'clinics.create', `clinic:${clinic.id}`, null, clinic);
    return clinic;
  }

  async updateClinic(actor: string, id: string, patch: ClinicPatch): Promise<Clinic> {
    const before = await this.requireClinic(id);
    const after = await this.store.updateClinic(id, patch);
    await this.audit(actor, 'clinics.update', `clinic:${id}`, before, after);
    // Name, time zone, answering service and contacts are in the boxes' settings.
    for (const box of await this.store.listBoxes({ clinicId: id, claimState: 'approved' })) {
      await this.applyClinicSettings(actor, box);
    }
    return after;
  }

  /**
   * Set the settings every box of the clinic starts from (a part of the box settings, null: none), checked
   * against the box settings schema, and publish the boxes' merged settings again.
   */
  async setClinicDefaults(
    actor: string,
    id: string,
    defaults: Record<string, unknown> | null,
  ): Promise<{ clinic: Clinic; boxesUpdated: number }> {
    const before = await this.requireClinic(id);
    effectiveSettings({ ...before, boxDefaults: defaults }, undefined, `box defaults of clinic ${before.name}`);
    const clinic = await this.store.updateClinic(id, { boxDefaults: defaults });
    await this.audit(actor, 'clinics.setDefaults', `clinic:${id}`, before, clinic);
    let boxesUpdated = 0;
    for (const box of await this.store.listBoxes({ clinicId: id, claimState: 'approved' })) {
      if (await this.applyClinicSettings(actor, box)) boxesUpdated++;
    }
    return { clinic, boxesUpdated };
  }

  async createOrganisation(actor: string, name: string) {
    const org = await this.store.createOrganisation(name);
    await this.audit(actor, 'orgs.create', `org:${org.id}`, null, org);
    return org;
  }

  /** Create an ops user with a new password (returned once, never stored plain). */
  async createOpsUser(
    actor: string,
    name: string,
    role: OpsRole,
    password = newSecret(),
    clinicId: string | null = null,
  ) {
    const user = await this.store.createOpsUser({ name, role, clinicId });
    await this.issue('ops', `ops:${name}`, name, password);
    await this.audit(actor, 'users.create', `user:${name}`, null, user);
    return { ...user, username: `ops:${name}`, password };
  }
}
