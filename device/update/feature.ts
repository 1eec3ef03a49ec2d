/**
 * Over-the-air updates, the box's half (a BoxModule; device/main.ts plugs it in).
 *
 * Offer. The fleet keeps the release this box should run as a retained UpdateOffer on update/offer. On every
 * connect the box subscribes to it and reports what it has not reported yet (the outcome of the last update).
 * An offer not newer than the running release is refused (UpdateRefused, reported `failed` with the reason), and a
 * release this box already rolled back is not tried again.
 *
 * Download. The tarball comes in ranges the box asks for with the 'update.chunk' request (fleet/req), written to
 * <dataDir>/update/<version>.tar.gz.part and fsynced range by range: after a restart or a lost connection the box
 * asks from the size on disk, so nothing is fetched twice. Progress is reported (downloading, with the bytes).
 *
 * Install. The whole tarball's sha256 must match the offer; then ReleaseSlots.stage() unpacks it beside the running
 * release and verifies the signature and every file against the signed manifest (refused: reported `failed` with
 * the reason, nothing changed), `verified` is reported, activate() records the pending update and switches the
 * `current` link, `installed` is reported, and the box stops so that systemd starts it on the new release.
 *
 * Confirm. A box that starts on a pending release checks its health every second: the store answers and every
 * module is healthy (Box.healthy(): the panic input is watched), the modem answers AT (state ready), MQTT is
 * connected. Once all pass it commits the release (confirm()), copies the release's guard.mjs to the install root
 * (only a confirmed release may replace the guard), keeps the release before as the fallback, and reports
 * `healthy`. When the deadline passes first it notes which checks fail and stops with exit code 1; the guard
 * (guard.mjs, ExecStartPre) then switches `current` back, and the old release reports `rolled_back` with the reason.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { FLEET_REQUESTS } from '../../shared/contract/rpc.js';
import type { DeviceTopics } from '../../shared/contract/topics.js';
import {
  type UpdateOffer,
  UpdateOfferSchema,
  type UpdateProgress,
  type UpdateStateName,
} from '../../shared/contract/update.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { releaseRefused } from '../../shared/release-signature.js';
import { RpcRequester } from '../../shared/rpc.js';
import { decodePayload } from '../../shared/validate.js';
import type { Box, BoxModule } from '../box.js';
import { compareVersions, ReleaseSlots } from './slots.js';

const log = getLogger('device:update');

export interface UpdateFeatureOptions {
  /** Does the modem answer AT (its state is ready)? Absent: not checked. */
  modemReady?: () => boolean;
  /** Stop the program so that systemd starts it again (on the new release, or for the guard to roll back). */
  restart: (why: string, code: number) => void;
  /** How often the health checks run while a release is unconfirmed. */
  checkEveryMs?: number;
}

type Session = { client: MqttClient; topics: DeviceTopics };

export class UpdateFeature implements BoxModule {
  readonly name = 'update';
  private box: Box | undefined;
  private slots: ReleaseSlots | undefined;
  private session: Session | undefined;
  private confirmTimer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  /** The offer being worked on (a withdrawal or a newer offer stops its download). */
  private current: UpdateOffer | null = null;
  private stopping = false;
  private confirming = false;
  private readonly onState = (s: string) => {
    if (s === 'online') void this.connected().catch((err) => log.warn({ err }, 'update check after connect failed'));
  };
  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (!this.session || topic !== this.session.topics.updateOffer) return;
    if (payload.length === 0) {
      if (this.current) log.info({ version: this.current.version }, 'update offer withdrawn by the fleet');
      this.current = null;
      return;
    }
    let offer: UpdateOffer;
    try {
      offer = decodePayload(UpdateOfferSchema, payload, 'update offer');
    } catch (err) {
      log.warn({ err }, 'malformed update offer ignored');
      return;
    }
    this.current = offer;
    this.busy = this.busy.then(() =>
      this.take(offer).catch((err) => log.error({ err, version: offer.version }, 'update failed')),
    );
  };

  constructor(private readonly opts: UpdateFeatureOptions) {}

  async start(box: Box): Promise<void> {
    this.box = box;
    const c = box.config.update;
    const keys: string[] = [];
    for (const file of c.publicKeyFiles) {
      try {
        keys.push(await readFile(file, 'utf8'));
      } catch (e) {
        log.error(
          { file, err: describeError(e) },
          'update.publicKeyFiles: key unreadable; updates signed with it are refused',
        );
      }
    }
    this.slots = new ReleaseSlots({ root: c.root, dataDir: box.config.box.dataDir, publicKeys: keys });
    const state = await this.slots.state();
    const running = await this.slots.currentVersion();
    if (state.pending && state.pending.version === running) this.watchHealth(state.pending.deadline);
    box.on('state', this.onState);
    if (box.state === 'online') this.onState('online');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.confirmTimer);
    this.box?.off('state', this.onState);
    this.session?.client.off('message', this.onMessage);
    this.current = null;
    await this.busy;
  }

  // ---- confirm ----------------------------------------------------------------------------------

  /** Which health checks fail now (empty: healthy). */
  async failingChecks(): Promise<string[]> {
    const box = this.box;
    if (!box) return ['not started'];
    const failing: string[] = [];
    if (!(await box.healthy().catch(() => false))) failing.push('store or a module (panic input) unhealthy');
    if (this.opts.modemReady && !this.opts.modemReady()) failing.push('modem does not answer AT (not ready)');
    if (box.state !== 'online') failing.push(`MQTT not connected (${box.state})`);
    return failing;
  }

  private watchHealth(deadline: string): void {
    const slots = this.slots;
    if (!slots) return;
    log.warn({ deadline }, 'running an unconfirmed release: checking its health');
    const check = async () => {
      if (this.confirming || this.stopping) return;
      this.confirming = true;
      try {
        const failing = await this.failingChecks();
        if (failing.length === 0) {
          clearInterval(this.confirmTimer);
          await this.commit();
          return;
        }
        await slots.noteHealth(failing.join('; '));
        if (Date.now() > Date.parse(deadline)) {
          clearInterval(this.confirmTimer);
          log.error(
            { failing, deadline },
            'the new release did not become healthy in time: stopping for the guard to roll it back',
          );
          this.opts.restart('update health deadline passed', 1);
        }
      } finally {
        this.confirming = false;
      }
    };
    this.confirmTimer = setInterval(
      () => void check().catch((err) => log.error({ err }, 'health check failed')),
      this.opts.checkEveryMs ?? 1000,
    );
    this.confirmTimer.unref();
  }

  private async commit(): Promise<void> {
    const slots = this.slots;
    const box = this.box;
    if (!slots || !box) return;
    const before = (await slots.state()).pending?.from ?? null;
    const outcome = await slots.confirm();
    if (!outcome) return;
    const root = box.config.update.root;
    // Only a release that proved healthy may replace the guard that can roll releases back.
    const guard = join(root, 'current', 'dist', 'device', 'guard.mjs');
    try {
      await copyFile(guard, join(root, 'guard.mjs.next'));
      await rename(join(root, 'guard.mjs.next'), join(root, 'guard.mjs'));
    } catch (e) {
      log.warn({ err: describeError(e) }, 'guard.mjs not refreshed from the new release (the old one stays)');
    }
    const removed = await slots.prune(before);
    log.info({ version: outcome.version, fallback: before, removed }, 'release confirmed healthy and committed');
    await this.reportOutcome();
  }

  // ---- reporting --------------------------------------------------------------------------------

  private async connected(): Promise<void> {
    const s = this.box?.session;
    if (!s || this.stopping) return;
    if (this.session?.client !== s.client) {
      this.session?.client.off('message', this.onMessage);
      this.session = s;
      s.client.on('message', this.onMessage);
    }
    await s.client.subscribeAsync(s.topics.updateOffer, { qos: 1 });
    await this.reportOutcome();
  }

  /** The outcome of the last update, once (committed: healthy; rolled back: with the guard's reason). */
  private async reportOutcome(): Promise<void> {
    const slots = this.slots;
    if (!slots || !this.session) return;
    const last = (await slots.state()).last;
    if (!last || last.reported || !last.rolloutId) return;
    const ok = await this.report(
      { rolloutId: last.rolloutId, version: last.version },
      last.outcome === 'committed' ? 'healthy' : 'rolled_back',
      last.reason ? { reason: last.reason } : {},
    );
    if (ok) await slots.markReported();
  }

  private async report(
    offer: Pick<UpdateOffer, 'rolloutId' | 'version'>,
    state: Exclude<UpdateStateName, 'offered'>,
    extra: { bytes?: number; totalBytes?: number; reason?: string } = {},
  ): Promise<boolean> {
    const s = this.session;
    if (!s?.client.connected) return false;
    const msg: UpdateProgress = {
      v: 1,
      rolloutId: offer.rolloutId,
      version: offer.version,
      state,
      running: (await this.slots?.currentVersion()) ?? null,
      ...extra,
      ...(extra.reason ? { reason: extra.reason.slice(0, 2000) } : {}),
      at: new Date().toISOString(),
    };
    try {
      await s.client.publishAsync(s.topics.updateProgress, JSON.stringify(msg), { qos: 1, retain: true });
      return true;
    } catch (err) {
      log.warn({ err, state }, 'update progress not published');
      return false;
    }
  }

  // ---- an offer ---------------------------------------------------------------------------------

  private async take(offer: UpdateOffer): Promise<void> {
    const slots = this.slots;
    if (!slots || this.stopping || this.current !== offer) return;
    const state = await slots.state();
    const running = await slots.currentVersion();
    if (state.pending) return; // confirming a release: offers wait until it is settled
    if (state.last?.version === offer.version && state.last.outcome === 'rolled_back') {
      await this.report(offer, 'rolled_back', state.last.reason ? { reason: state.last.reason } : {});
      return;
    }
    if (running && compareVersions(offer.version, running) <= 0) {
      if (offer.version === running) {
        await this.report(offer, 'healthy');
        return;
      }
      const refused = releaseRefused(`release ${offer.version} is not newer than the running ${running}`);
      log.warn({ version: offer.version, running }, refused.message);
      await this.report(offer, 'failed', { reason: refused.message });
      return;
    }
    let tarball: string | null;
    try {
      tarball = await this.download(offer);
    } catch (e) {
      if (e instanceof CallboxError && (e.code === ErrorCode.UpdateRefused || e.code === ErrorCode.UpdateFailed)) {
        await this.report(offer, 'failed', { reason: e.message });
        return;
      }
      // Lost connection, a fleet restarting: the download resumes at the next connect.
      log.warn({ err: describeError(e), version: offer.version }, 'update download interrupted; it resumes later');
      return;
    }
    if (!tarball) return;
    let version: string;
    try {
      version = await slots.stage(tarball);
    } catch (e) {
      log.error({ err: describeError(e), version: offer.version }, 'update refused');
      await this.report(offer, 'failed', { reason: describeError(e) });
      return;
    } finally {
      await rm(tarball, { force: true });
    }
    if (version !== offer.version) {
      await this.report(offer, 'failed', {
        reason: releaseRefused(`the tarball holds release ${version}, the offer was ${offer.version}`).message,
      });
      return;
    }
    await this.report(offer, 'verified');
    if (this.stopping || this.current !== offer) return;
    const box = this.box;
    if (!box) return;
    await slots.activate(version, box.config.update.confirmWithinS * 1000, offer.rolloutId);
    await this.report(offer, 'installed');
    log.warn({ version, from: running }, 'update installed: restarting on the new release');
    this.opts.restart(`update to ${version}`, 0);
  }

  /** The tarball, whole and matching the offer's sha256; null when the offer went away meanwhile. */
  private async download(offer: UpdateOffer): Promise<string | null> {
    const box = this.box;
    const s = this.session;
    if (!box || !s) return null;
    const dir = join(box.config.box.dataDir, 'update');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const part = join(dir, `${offer.version}.tar.gz.part`);
    const meta = join(dir, `${offer.version}.json`);
    const want = JSON.stringify({ sha256: offer.sha256, totalBytes: offer.totalBytes });
    if ((await readFile(meta, 'utf8').catch(() => '')) !== want) {
      // Another tarball under the same version (or none yet): start over.
      await rm(part, { force: true });
      await writeFile(meta, want, { mode: 0o600 });
    }
    let have = await stat(part).then(
      (st) => st.size,
      () => 0,
    );
    if (have > offer.totalBytes) {
      await rm(part, { force: true });
      have = 0;
    }
    const requester = new RpcRequester(s.client, FLEET_REQUESTS, {
      responseFilter: s.topics.fleetRes,
      defaultTimeoutMs: box.config.mqtt.requestTimeoutMs,
      log,
    });
    await requester.start();
    if (have > 0) log.info({ version: offer.version, have, total: offer.totalBytes }, 'resuming the update download');
    await this.report(offer, 'downloading', { bytes: have, totalBytes: offer.totalBytes });
    const fh = await open(part, have > 0 ? 'r+' : 'w', 0o600);
    try {
      let lastReported = have;
      while (have < offer.totalBytes) {
        if (this.stopping || this.current !== offer) return null;
        const res = await requester.request(s.topics.fleetReq, 'update.chunk', {
          version: offer.version,
          offset: have,
          length: box.config.update.chunkBytes,
        });
        const data = Buffer.from(res.data, 'base64');
        if (res.offset !== have || data.length === 0 || res.totalBytes !== offer.totalBytes) {
          throw new CallboxError(
            ErrorCode.UpdateFailed,
            `update download: the fleet answered offset ${res.offset} with ${data.length} bytes of ${res.totalBytes}, asked ${have} of ${offer.totalBytes}`,
          );
        }
        await fh.write(data, 0, data.length, have);
        await fh.sync();
        have += data.length;
        if (have - lastReported >= offer.totalBytes / 10 || have === offer.totalBytes) {
          lastReported = have;
          await this.report(offer, 'downloading', { bytes: have, totalBytes: offer.totalBytes });
        }
      }
    } finally {
      requester.stop();
      await fh.close();
    }
    const sha = createHash('sha256')
      .update(await readFile(part))
      .digest('hex');
    if (sha !== offer.sha256) {
      await rm(part, { force: true });
      throw new CallboxError(
        ErrorCode.UpdateFailed,
        `update download: the tarball's sha256 is ${sha}, the offer says ${offer.sha256} (discarded; offered again it is fetched anew)`,
      );
    }
    const whole = join(dir, `${offer.version}.tar.gz`);
    await rename(part, whole);
    await rm(meta, { force: true });
    return whole;
  }
}
