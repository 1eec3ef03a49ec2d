/**
 * Over-the-air updates, the fleet's half: signed releases and staged rollouts.
 *
 * Releases. Ops upload a release made by `npm run release -- device` and signed offline (`fleet release sign`):
 * releases.create carries MANIFEST.json and its signature, checked at once against the trusted public keys
 * (updates.publicKeyFiles; the fleet never holds the private key); releases.chunk carries the tarball in order
 * (resumable: a repeated chunk is answered, not written twice). After the last byte the fleet checks the tarball's
 * sha256, unpacks it into a scratch folder and verifies every file against the signed manifest, and only then marks
 * the release ready; the tarball is kept as <updates.dir>/<version>.tar.gz.
 *
 * Rollouts. A rollout offers one ready release to a set of boxes in stages (percentages). The boxes are put in a
 * stable order by the sha256 of their device id, and a stage of p% includes the first ceil(p% of n) of them, so
 * the boxes of 10% are the same today and tomorrow and are still included at 50%. An offer is a retained
 * UpdateOffer on the box's update/offer topic; the box reports on update/progress (retained), stored per box in
 * rollout_boxes: offered, downloading, verified, installed, healthy, rolled_back, failed. When the failures
 * (rolled_back or failed) reach failureMaxCount, or failureMaxShare of the boxes offered, the rollout pauses by
 * itself: offers to boxes that have not installed the release yet are withdrawn (an empty retained message).
 * Ops advance it stage by stage, pause and resume it. One rollout runs at a time.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { deviceTopics, FLEET_SUBSCRIPTIONS, parseTopic } from '../../shared/contract/topics.js';
import {
  type ReleaseInfo,
  type RolloutInfo,
  type RolloutStatus,
  UPDATE_FAILURES,
  type UpdateOffer,
  type UpdateProgress,
  UpdateProgressSchema,
  type UpdateStateName,
  VERSION_PATTERN,
} from '../../shared/contract/update.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import { getLogger } from '../../shared/log.js';
import { type ReleaseManifest, releaseRefused, verifyManifest, verifyRelease } from '../../shared/release-signature.js';
import { decodePayload } from '../../shared/validate.js';
import type { Registry } from '../registry.js';
import type { Rollout, Store, StoredRelease } from '../store/types.js';

const log = getLogger('fleet:updates');
const run = promisify(execFile);

/** Device ids in rollout order: by the sha256 of the id (stable, and independent of names and dates). */
export function rolloutOrder(deviceIds: readonly string[]): string[] {
  const key = (id: string) => createHash('sha256').update(id).digest('hex');
  return [...deviceIds].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** How many of n boxes a stage of `percent` includes. */
export function includedCount(n: number, percent: number): number {
  return Math.min(n, Math.ceil((n * percent) / 100));
}

const PENDING_STATES = new Set<string | null>([null, 'offered', 'downloading']);

export interface RolloutsOptions {
  store: Store;
  registry: Registry;
  client: () => MqttClient | undefined;
  dir: string;
  publicKeys: readonly string[];
}

export class Rollouts {
  /** Bytes of release tarballs sent to each box, by "<deviceId> <version>" (diagnostics and tests). */
  readonly served = new Map<string, number>();
  /** Called for every range served (tests interrupt a download with it). */
  onServe: ((deviceId: string, version: string, offset: number, bytes: number, total: number) => void) | undefined;
  private readonly allowed = new Set<string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  rejected = 0;
  private readonly onMessage = (topic: string, payload: Buffer) => {
    const parsed = parseTopic(topic);
    if (parsed?.key !== 'updateProgress' || !parsed.deviceId || payload.length === 0) return;
    const deviceId = parsed.deviceId;
    let progress: UpdateProgress;
    try {
      progress = decodePayload(UpdateProgressSchema, payload, 'update progress');
    } catch (err) {
      this.rejected++;
      log.warn({ err, deviceId }, 'update progress rejected');
      return;
    }
    void this.serial(`rollout:${progress.rolloutId}`, () => this.progress(deviceId, progress)).catch((err) =>
      log.error({ err, deviceId }, 'update progress not recorded'),
    );
  };

  constructor(private readonly opts: RolloutsOptions) {}

  async start(): Promise<void> {
    const client = this.mqtt();
    client.on('message', this.onMessage);
    await client.subscribeAsync(FLEET_SUBSCRIPTIONS.updateProgress, { qos: 1 });
    // Offers are retained by the broker; made again at start in case the broker lost them.
    for (const r of await this.opts.store.listRollouts({ state: 'running' })) await this.offerIncluded(r);
  }

  stop(): void {
    this.opts.client()?.off('message', this.onMessage);
  }

  private mqtt(): MqttClient {
    const c = this.opts.client();
    if (!c) throw new CallboxError(ErrorCode.ShuttingDown, 'the fleet is not connected to its broker');
    return c;
  }

  /** One at a time per key (a release's upload, a rollout's changes). */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  private tarball(version: string, partial = false): string {
    return join(this.opts.dir, `${version}.tar.gz${partial ? '.part' : ''}`);
  }

  // ---- releases -------------------------------------------------------------------------------

  createRelease(
    actor: string,
    p: { manifest: string; signature: string; sha256: string; totalBytes: number },
  ): Promise<ReleaseInfo> {
    const bytes = Buffer.from(p.manifest, 'utf8');
    const keyId = verifyManifest(bytes, p.signature, this.opts.publicKeys);
    let m: ReleaseManifest;
    try {
      m = JSON.parse(p.manifest) as ReleaseManifest;
    } catch (e) {
      throw releaseRefused(`MANIFEST.json is not JSON: ${describeError(e)}`);
    }
    if (m.program !== 'device') {
      throw releaseRefused(`the release is for the ${m.program} program; only device releases are rolled out to boxes`);
    }
    if (typeof m.version !== 'string' || !new RegExp(VERSION_PATTERN).test(m.version)) {
      throw releaseRefused(`version "${String(m.version)}" in MANIFEST.json is not x.y.z`);
    }
    return this.serial(`release:${m.version}`, async () => {
      const existing = await this.opts.store.getRelease(m.version);
      if (existing && existing.sha256 === p.sha256 && existing.manifest === p.manifest) return info(existing);
      if (existing?.state === 'ready') {
        throw new CallboxError(
          ErrorCode.Conflict,
          `release ${m.version} is stored already with other contents; a version is never replaced (make a new one)`,
        );
      }
      await (await open(this.tarball(m.version, true), 'w', 0o600)).close();
      const r: StoredRelease = {
        version: m.version,
        program: m.program,
        arch: String(m.arch),
        keyId,
        manifest: p.manifest,
        signature: p.signature.trim(),
        sha256: p.sha256,
        totalBytes: p.totalBytes,
        receivedBytes: 0,
        state: 'uploading',
        createdBy: actor,
        createdAt: new Date().toISOString(),
      };
      await this.opts.store.putRelease(r);
      await this.opts.store.appendAudit({
        actor,
        action: 'releases.create',
        target: `release:${m.version}`,
        before: null,
        after: { keyId, sha256: p.sha256, totalBytes: p.totalBytes, arch: r.arch },
      });
      log.info({ actor, version: m.version, keyId }, 'release upload started (signature verified)');
      return info(r);
    });
  }

  chunk(actor: string, p: { version: string; offset: number; data: string }): Promise<ReleaseInfo> {
    return this.serial(`release:${p.version}`, async () => {
      const r = await this.opts.store.getRelease(p.version);
      if (!r) throw new CallboxError(ErrorCode.NotFound, `release ${p.version} does not exist: releases.create first`);
      const data = Buffer.from(p.data, 'base64');
      if (r.state === 'ready' || p.offset + data.length <= r.receivedBytes) return info(r);
      if (p.offset !== r.receivedBytes) {
        throw new CallboxError(
          ErrorCode.Conflict,
          `release ${p.version}: chunk at offset ${p.offset}, expected ${r.receivedBytes} (the bytes received so far)`,
        );
      }
      if (p.offset + data.length > r.totalBytes) {
        throw new CallboxError(
          ErrorCode.ValidationFailed,
          `release ${p.version}: ${p.offset + data.length} bytes is more than the announced ${r.totalBytes}`,
        );
      }
      const fh = await open(this.tarball(p.version, true), 'r+');
      try {
        await fh.truncate(p.offset);
        await fh.write(data, 0, data.length, p.offset);
        await fh.sync();
      } finally {
        await fh.close();
      }
      r.receivedBytes = p.offset + data.length;
      if (r.receivedBytes === r.totalBytes) await this.complete(actor, r);
      else await this.opts.store.putRelease(r);
      return info(r);
    });
  }

  /** The whole tarball is here: sha256, then every file against the signed manifest; ready or refused. */
  private async complete(actor: string, r: StoredRelease): Promise<void> {
    const part = this.tarball(r.version, true);
    const scratch = await mkdtemp(join(this.opts.dir, '.verify-'));
    try {
      const sha = createHash('sha256')
        .update(await readFile(part))
        .digest('hex');
      if (sha !== r.sha256) throw releaseRefused(`the tarball's sha256 is ${sha}, announced ${r.sha256}`);
      try {
        await run('tar', ['-xzf', part, '-C', scratch, '--strip-components=1', '--no-same-owner']);
      } catch (e) {
        throw releaseRefused(`the tarball cannot be unpacked: ${describeError(e)}`);
      }
      const onDisk = await readFile(join(scratch, 'MANIFEST.json'), 'utf8').catch(() => '');
      if (onDisk !== r.manifest) throw releaseRefused('the MANIFEST.json in the tarball is not the one announced');
      await verifyRelease(scratch, this.opts.publicKeys, { program: 'device' });
    } catch (e) {
      await rm(part, { force: true });
      await this.opts.store.putRelease({ ...r, receivedBytes: 0 });
      log.warn({ actor, version: r.version, err: describeError(e) }, 'release refused');
      throw e;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    await rename(part, this.tarball(r.version));
    r.state = 'ready';
    await this.opts.store.putRelease(r);
    log.info({ actor, version: r.version, bytes: r.totalBytes }, 'release stored and verified');
  }

  async listReleases(): Promise<ReleaseInfo[]> {
    return (await this.opts.store.listReleases()).map(info);
  }

  // ---- serving boxes --------------------------------------------------------------------------

  /** A range of an offered release for a box that is part of a rollout of it. */
  async serveChunk(
    deviceId: string,
    p: { version: string; offset: number; length: number },
  ): Promise<{ offset: number; totalBytes: number; data: string }> {
    const r = await this.opts.store.getRelease(p.version);
    if (r?.state !== 'ready') throw new CallboxError(ErrorCode.NotFound, `release ${p.version} is not available`);
    const key = `${deviceId} ${p.version}`;
    if (!this.allowed.has(key)) {
      let offered = false;
      for (const ro of await this.opts.store.listRollouts()) {
        if (ro.version !== p.version) continue;
        if ((await this.opts.store.listRolloutBoxes(ro.id)).some((b) => b.deviceId === deviceId)) offered = true;
      }
      if (!offered) {
        throw new CallboxError(ErrorCode.NotAuthorized, `release ${p.version} was not offered to ${deviceId}`);
      }
      this.allowed.add(key);
    }
    if (p.offset >= r.totalBytes) {
      throw new CallboxError(ErrorCode.ValidationFailed, `offset ${p.offset} is past the end (${r.totalBytes} bytes)`);
    }
    const length = Math.min(p.length, r.totalBytes - p.offset);
    const buf = Buffer.alloc(length);
    const fh = await open(this.tarball(p.version), 'r');
    try {
      await fh.read(buf, 0, length, p.offset);
    } finally {
      await fh.close();
    }
    this.served.set(key, (this.served.get(key) ?? 0) + length);
    this.onServe?.(deviceId, p.version, p.offset, length, r.totalBytes);
    return { offset: p.offset, totalBytes: r.totalBytes, data: buf.toString('base64') };
  }

  // ---- rollouts -------------------------------------------------------------------------------

  async startRollout(
    actor: string,
    p: { version: string; boxes?: string[]; stages?: number[]; failureMaxCount?: number; failureMaxShare?: number },
  ): Promise<RolloutInfo> {
    const release = await this.opts.store.getRelease(p.version);
    if (release?.state !== 'ready') {
      throw new CallboxError(
        ErrorCode.NotFound,
        `release ${p.version} is not stored${release ? ' completely (upload it again)' : ''}: fleet release upload first`,
      );
    }
    const stages = p.stages ?? [10, 50, 100];
    if (stages.some((s, i) => i > 0 && s <= (stages[i - 1] ?? 0)) || stages[stages.length - 1] !== 100) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `stages ${JSON.stringify(stages)}: expected increasing percentages ending at 100`,
      );
    }
    const running = await this.opts.store.listRollouts({ state: 'running' });
    if (running[0]) {
      throw new CallboxError(
        ErrorCode.Conflict,
        `rollout ${running[0].id} of ${running[0].version} is running: pause it first (one rollout at a time)`,
      );
    }
    const ids = new Set<string>();
    if (p.boxes) {
      for (const ref of p.boxes) {
        const box = await this.opts.registry.resolveBox(ref);
        if (!box.deviceId || box.claimState !== 'approved') {
          throw new CallboxError(ErrorCode.ClaimPending, `box ${ref} is ${box.claimState}; it cannot be updated`);
        }
        ids.add(box.deviceId);
      }
    } else {
      for (const b of await this.opts.store.listBoxes({ claimState: 'approved' })) if (b.deviceId) ids.add(b.deviceId);
    }
    if (ids.size === 0) throw new CallboxError(ErrorCode.ValidationFailed, 'no boxes to roll out to');
    const at = new Date().toISOString();
    const r: Rollout = {
      id: newEventId(),
      version: p.version,
      stages,
      stage: 0,
      state: 'running',
      pausedReason: null,
      failureMaxCount: p.failureMaxCount ?? 1,
      failureMaxShare: p.failureMaxShare ?? 0.2,
      createdBy: actor,
      createdAt: at,
      updatedAt: at,
    };
    await this.opts.store.createRollout(
      r,
      rolloutOrder([...ids]).map((deviceId, rank) => ({ deviceId, rank })),
    );
    await this.audit(actor, 'rollouts.start', r, { version: r.version, boxes: ids.size, stages });
    log.info({ actor, rolloutId: r.id, version: r.version, boxes: ids.size, stages }, 'rollout started');
    await this.offerIncluded(r);
    return r;
  }

  private async rollout(id: string | undefined): Promise<Rollout> {
    const r = id ? await this.opts.store.getRollout(id) : (await this.opts.store.listRollouts())[0];
    if (!r) throw new CallboxError(ErrorCode.NotFound, id ? `rollout ${id} does not exist` : 'there is no rollout');
    return r;
  }

  async status(id?: string): Promise<RolloutStatus> {
    const r = await this.rollout(id);
    const boxes = await this.opts.store.listRolloutBoxes(r.id);
    const n = includedCount(boxes.length, r.stages[r.stage] ?? 100);
    const counts: Record<string, number> = {};
    for (const b of boxes) {
      const k = b.state ?? (b.rank < n ? 'included' : 'not_included');
      counts[k] = (counts[k] ?? 0) + 1;
    }
    return {
      rollout: r,
      counts,
      boxes: boxes.map((b) => ({
        deviceId: b.deviceId,
        rank: b.rank,
        included: b.rank < n,
        state: b.state,
        running: b.running,
        bytes: b.bytes,
        reason: b.reason,
        updatedAt: b.updatedAt,
      })),
    };
  }

  advance(actor: string, id: string): Promise<RolloutInfo> {
    return this.serial(`rollout:${id}`, async () => {
      const r = await this.rollout(id);
      if (r.state !== 'running') {
        throw new CallboxError(
          ErrorCode.Conflict,
          `rollout ${id} is ${r.state}${r.pausedReason ? ` (${r.pausedReason})` : ''}: resume it first`,
        );
      }
      if (r.stage >= r.stages.length - 1) {
        throw new CallboxError(ErrorCode.Conflict, `rollout ${id} is at its last stage (${r.stages[r.stage]}%)`);
      }
      const next = await this.opts.store.updateRollout(id, { stage: r.stage + 1 });
      await this.audit(actor, 'rollouts.advance', next, { stage: next.stage, percent: next.stages[next.stage] });
      log.info({ actor, rolloutId: id, percent: next.stages[next.stage] }, 'rollout advanced');
      await this.offerIncluded(next);
      return next;
    });
  }

  pause(actor: string, id: string, reason?: string): Promise<RolloutInfo> {
    return this.serial(`rollout:${id}`, () => this.pauseNow(actor, id, reason ?? `paused by ${actor}`));
  }

  private async pauseNow(actor: string, id: string, reason: string): Promise<Rollout> {
    const r = await this.rollout(id);
    if (r.state === 'done') throw new CallboxError(ErrorCode.Conflict, `rollout ${id} is done`);
    const paused = await this.opts.store.updateRollout(id, { state: 'paused', pausedReason: reason });
    for (const b of await this.opts.store.listRolloutBoxes(id)) {
      if (PENDING_STATES.has(b.state)) await this.withdraw(b.deviceId);
    }
    await this.audit(actor, 'rollouts.pause', paused, { reason });
    log.warn({ actor, rolloutId: id, reason }, 'rollout paused');
    return paused;
  }

  resume(actor: string, id: string): Promise<RolloutInfo> {
    return this.serial(`rollout:${id}`, async () => {
      const r = await this.rollout(id);
      if (r.state !== 'paused') throw new CallboxError(ErrorCode.Conflict, `rollout ${id} is ${r.state}, not paused`);
      const running = (await this.opts.store.listRollouts({ state: 'running' }))[0];
      if (running) {
        throw new CallboxError(
          ErrorCode.Conflict,
          `rollout ${running.id} of ${running.version} is running: pause it first`,
        );
      }
      const next = await this.opts.store.updateRollout(id, { state: 'running', pausedReason: null });
      await this.audit(actor, 'rollouts.resume', next, {});
      log.info({ actor, rolloutId: id }, 'rollout resumed');
      await this.offerIncluded(next);
      return next;
    });
  }

  private async audit(actor: string, action: string, r: Rollout, after: Record<string, unknown>): Promise<void> {
    await this.opts.store.appendAudit({ actor, action, target: `rollout:${r.id}`, before: null, after });
  }

  /** Offer the release to every box of the stage reached that has not finished with it. */
  private async offerIncluded(r: Rollout): Promise<void> {
    const release = await this.opts.store.getRelease(r.version);
    if (!release) return;
    const boxes = await this.opts.store.listRolloutBoxes(r.id);
    const n = includedCount(boxes.length, r.stages[r.stage] ?? 100);
    const offer: UpdateOffer = {
      v: 1,
      rolloutId: r.id,
      program: 'device',
      version: r.version,
      totalBytes: release.totalBytes,
      sha256: release.sha256,
      at: new Date().toISOString(),
    };
    for (const b of boxes) {
      if (b.rank >= n || !PENDING_STATES.has(b.state)) continue;
      await this.mqtt().publishAsync(deviceTopics(b.deviceId).updateOffer, JSON.stringify(offer), {
        qos: 1,
        retain: true,
      });
      if (b.state === null) await this.opts.store.setRolloutBox(r.id, b.deviceId, { state: 'offered' });
    }
  }

  private async withdraw(deviceId: string): Promise<void> {
    await this.mqtt().publishAsync(deviceTopics(deviceId).updateOffer, '', { qos: 1, retain: true });
  }

  private async progress(deviceId: string, p: UpdateProgress): Promise<void> {
    const r = await this.opts.store.getRollout(p.rolloutId);
    if (!r || r.version !== p.version) {
      log.debug({ deviceId, rolloutId: p.rolloutId }, 'progress for an unknown rollout ignored');
      return;
    }
    const boxes = await this.opts.store.listRolloutBoxes(r.id);
    const box = boxes.find((b) => b.deviceId === deviceId);
    if (!box) {
      log.warn({ deviceId, rolloutId: r.id }, 'progress from a box outside the rollout ignored');
      return;
    }
    const finished = box.state === 'healthy' || box.state === 'rolled_back' || box.state === 'failed';
    if (finished && !(UPDATE_FAILURES.includes(p.state) || p.state === 'healthy')) return;
    await this.opts.store.setRolloutBox(r.id, deviceId, {
      state: p.state,
      running: p.running,
      bytes: p.bytes ?? box.bytes,
      reason: p.reason ?? null,
    });
    if (box.state !== p.state) {
      log.info({ deviceId, rolloutId: r.id, version: r.version, state: p.state, reason: p.reason }, 'update progress');
    }
    const states = boxes.map((b) => (b.deviceId === deviceId ? p.state : b.state));
    if (UPDATE_FAILURES.includes(p.state as UpdateStateName)) {
      // A failed box must not try the same release again on its own.
      await this.withdraw(deviceId);
      const failures = states.filter((s) => s === 'rolled_back' || s === 'failed').length;
      const offered = states.filter((s) => s !== null).length;
      if (
        r.state === 'running' &&
        (failures >= r.failureMaxCount || failures / Math.max(1, offered) > r.failureMaxShare)
      ) {
        await this.pauseNow(
          'fleet',
          r.id,
          `${failures} of ${offered} box(es) offered failed (threshold: ${r.failureMaxCount} or ${Math.round(r.failureMaxShare * 100)}%); last: ${deviceId} ${p.state}${p.reason ? `: ${p.reason}` : ''}`.slice(
            0,
            2000,
          ),
        );
      }
    } else if (r.state === 'running' && r.stage === r.stages.length - 1 && states.every((s) => s === 'healthy')) {
      await this.opts.store.updateRollout(r.id, { state: 'done' });
      log.info({ rolloutId: r.id, version: r.version, boxes: boxes.length }, 'rollout done: every box healthy');
    }
  }
}

function info(r: StoredRelease): ReleaseInfo {
  const { manifest: _m, signature: _s, ...rest } = r;
  return rest;
}
