/**
 * The ops API over MQTT: an RpcResponder on callbox/v1/_ops/+/req with the
 * OPS_METHODS table (shared/contract/ops.ts). The user is the topic's (the
 * broker lets only ops:<user> publish there); the user's role is checked
 * against the method's before anything runs.
 */
import type { MqttClient } from 'mqtt';
import { DEFAULT_PAGE, OPS_METHODS, type OpsMethod, ROLE_RANK } from '../shared/contract/ops.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { FLEET_SUBSCRIPTIONS, parseTopic } from '../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import { type Handlers, type RequestContext, RpcResponder } from '../shared/rpc.js';
import { SOFTWARE_VERSION } from '../shared/version.js';
import type { DeviceCommands } from './commands.js';
import type { Presence } from './presence.js';
import type { Registry } from './registry.js';
import type { Box, Store } from './store/types.js';

const log = getLogger('fleet:ops');

type T = typeof OPS_METHODS;

export class OpsApi {
  private responder: RpcResponder<T> | undefined;

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly commands: DeviceCommands,
    /** Who is online: a command for an offline box is queued or refused at once (boxes.command). */
    private readonly presence?: Pick<Presence, 'isOnline' | 'lastSeen'>,
    private readonly commandTimeoutMs = 15_000,
  ) {}

  /** The ops user behind a request, checked to exist, be enabled and hold the role. */
  private async actor(method: OpsMethod, ctx: RequestContext): Promise<string> {
    const user = parseTopic(ctx.topic)?.user;
    const found = user ? await this.store.getOpsUser(user) : undefined;
    if (!user || !found || found.disabledAt) {
      throw new CallboxError(ErrorCode.NotAuthorized, `ops user ${user ?? '?'} is unknown or disabled`);
    }
    const need = OPS_METHODS[method].role;
    if (ROLE_RANK[found.role] < ROLE_RANK[need]) {
      throw new CallboxError(
        ErrorCode.NotAuthorized,
        `${method} needs the ${need} role; ops:${user} is ${found.role} (an admin can change it)`,
      );
    }
    return `ops:${user}`;
  }

  handlers(): Handlers<T> {
    const r = this.registry;
    const s = this.store;
    const h: Handlers<T> = {
      'fleet.hello': async (_p, ctx) => ({
        service: 'callbox-fleet' as const,
        version: SOFTWARE_VERSION,
        user: await this.actor('fleet.hello', ctx),
      }),
      'boxes.list': async (p, ctx) => {
        await this.actor('boxes.list', ctx);
        return s.listBoxes({ ...p, limit: p.limit ?? DEFAULT_PAGE });
      },
      'boxes.show': async (p, ctx) => {
        await this.actor('boxes.show', ctx);
        const box = await r.resolveBox(p.box);
        const desired = box.deviceId ? ((await s.getDesiredConfig(box.deviceId)) ?? null) : null;
        const gaps = box.deviceId
          ? (await s.findGaps(box.deviceId)).map(({ fromSeq, toSeq }) => ({ fromSeq, toSeq }))
          : [];
        const eventCount = box.deviceId ? await s.countEvents({ deviceId: box.deviceId }) : 0;
        return { box, desired, gaps, eventCount };
      },
      'boxes.register': async (p, ctx) => r.registerBox(await this.actor('boxes.register', ctx), p),
      'claims.list': async (p, ctx) => {
        await this.actor('claims.list', ctx);
        return s.listBoxes({ claimState: 'pending', ...p, limit: p.limit ?? DEFAULT_PAGE });
      },
      'claims.approve': async (p, ctx) => r.approveClaim(await this.actor('claims.approve', ctx), p.serial, p.clinicId),
      'claims.reject': async (p, ctx) => r.rejectClaim(await this.actor('claims.reject', ctx), p.serial, p.reason),
      'boxes.assign': async (p, ctx) => r.assignBox(await this.actor('boxes.assign', ctx), p.box, p.clinicId),
      'boxes.setConfig': async (p, ctx) => {
        const cfg = await r.setConfig(await this.actor('boxes.setConfig', ctx), p.box, p.settings);
        return { deviceId: cfg.deviceId, version: cfg.version };
      },
      'boxes.getConfig': async (p, ctx) => {
        await this.actor('boxes.getConfig', ctx);
        const box = await r.resolveBox(p.box);
        return box.deviceId ? ((await s.getDesiredConfig(box.deviceId, p.version)) ?? null) : null;
      },
      'boxes.rotateCredentials': async (p, ctx) =>
        r.rotateCredentials(await this.actor('boxes.rotateCredentials', ctx), p.box),
      'boxes.decommission': async (p, ctx) =>
        r.decommission(await this.actor('boxes.decommission', ctx), p.box, p.reason),
      'boxes.command': async (p, ctx) => {
        const actor = await this.actor('boxes.command', ctx);
        if (!(p.method in DEVICE_COMMANDS)) {
          throw new CallboxError(
            ErrorCode.UnknownMethod,
            `unknown box command "${p.method}"; boxes answer: ${Object.keys(DEVICE_COMMANDS).join(', ')}`,
          );
        }
        const box: Box = await r.resolveBox(p.box);
        if (!box.deviceId || box.claimState !== 'approved') {
          throw new CallboxError(ErrorCode.ClaimPending, `box ${p.box} is ${box.claimState}; it cannot take commands`);
        }
        log.info({ actor, deviceId: box.deviceId, method: p.method }, 'command to box');
        await s.appendAudit({
          actor,
          action: 'boxes.command',
          target: `box:${box.serial}`,
          before: null,
          after: { method: p.method },
        });
        const sent = () =>
          this.commands.send(
            box.deviceId as string,
            p.method as keyof typeof DEVICE_COMMANDS,
            (p.params ?? {}) as never,
            {
              ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
              ...(p.expiresInMs === undefined ? {} : { expiresInMs: p.expiresInMs }),
            },
          );
        // Offline as the fleet knows it: its presence (a box seen, then gone), else the store's last word.
        const known = this.presence?.lastSeen(box.deviceId);
        const offline =
          known !== undefined
            ? !this.presence?.isOnline(box.deviceId)
            : this.presence !== undefined && box.lastSeenAt !== null && !box.online;
        if (offline) {
          // The box is offline: its persistent session keeps the command until it is back, and the box refuses it
          // after its expiry. Say so now rather than after the wait: queued when it may still run, else refused.
          const seen = known ?? Date.parse(box.lastSeenAt as string);
          const since = `offline since ${new Date(seen).toISOString()}`;
          const wait = p.timeoutMs ?? this.commandTimeoutMs;
          if (p.expiresInMs === undefined || p.expiresInMs <= wait) {
            throw new CallboxError(
              ErrorCode.DeviceOffline,
              `box ${box.serial} is ${since}; the command would expire within ${wait} ms, before the box could get it: not sent (give it a longer expiry, --expires <seconds>, to queue it until the box is back)`,
            );
          }
          const expiresAt = new Date(Date.now() + p.expiresInMs).toISOString();
          sent().then(
            (result) => log.info({ deviceId: box.deviceId, method: p.method, result }, 'queued command answered'),
            (err) =>
              log.info(
                { deviceId: box.deviceId, method: p.method, err: String(err) },
                'queued command: no answer in the wait',
              ),
          );
          return {
            queued: true,
            box: box.serial,
            offlineSince: new Date(seen).toISOString(),
            expiresAt,
            message: `box ${box.serial} is ${since}; the command is queued until ${expiresAt}`,
          };
        }
        return sent();
      },
      'clinics.list': async (p, ctx) => {
        await this.actor('clinics.list', ctx);
        return s.listClinics({ ...p, limit: p.limit ?? DEFAULT_PAGE });
      },
      'clinics.show': async (p, ctx) => {
        await this.actor('clinics.show', ctx);
        const clinic = await s.getClinic(p.clinicId);
        if (!clinic) throw new CallboxError(ErrorCode.NotFound, `no clinic ${p.clinicId}`);
        return { clinic, boxes: await s.listBoxes({ clinicId: clinic.id }) };
      },
      'clinics.create': async (p, ctx) =>
        r.createClinic(await this.actor('clinics.create', ctx), {
          organisationId: p.organisationId ?? null,
          name: p.name,
          timezone: p.timezone,
          phoneNumbers: p.phoneNumbers,
          answeringService: p.answeringService ?? null,
          contacts: p.contacts,
        }),
      'clinics.setDefaults': async (p, ctx) =>
        r.setClinicDefaults(await this.actor('clinics.setDefaults', ctx), p.clinicId, p.defaults),
      'clinics.update': async (p, ctx) => {
        const { clinicId, ...patch } = p;
        return r.updateClinic(await this.actor('clinics.update', ctx), clinicId, patch);
      },
      'orgs.create': async (p, ctx) => r.createOrganisation(await this.actor('orgs.create', ctx), p.name),
      'orgs.list': async (p, ctx) => {
        await this.actor('orgs.list', ctx);
        return s.listOrganisations({ ...p, limit: p.limit ?? DEFAULT_PAGE });
      },
      'users.create': async (p, ctx) => {
        const u = await r.createOpsUser(await this.actor('users.create', ctx), p.name, p.role);
        return { name: u.name, role: u.role, username: u.username, password: u.password };
      },
      'events.list': async (p, ctx) => {
        await this.actor('events.list', ctx);
        const box = p.box ? await r.resolveBox(p.box) : undefined;
        if (p.box && !box?.deviceId) return [];
        return s.listEvents({
          ...(box?.deviceId ? { deviceId: box.deviceId } : {}),
          ...(p.type ? { type: p.type } : {}),
          ...(p.since ? { since: p.since } : {}),
          ...(p.before ? { beforeId: p.before } : {}),
          limit: p.limit ?? DEFAULT_PAGE,
        });
      },
      'audit.list': async (p, ctx) => {
        await this.actor('audit.list', ctx);
        const { before, ...rest } = p;
        return s.listAudit({
          ...rest,
          ...(before === undefined ? {} : { beforeId: before }),
          limit: p.limit ?? DEFAULT_PAGE,
        });
      },
    };
    return h;
  }

  private readonly extra: Handlers<T> = {};
  private live: Handlers<T> | undefined;

  /**
   * Add a feature's handlers (the alert engine's ALERT_OPS_METHODS) for methods of OPS_METHODS, before or
   * after start; `actor` is this API's check of the user and the method's role.
   */
  extend(make: (actor: (method: OpsMethod, ctx: RequestContext) => Promise<string>) => Handlers<T>): void {
    const h = make((method, ctx) => this.actor(method, ctx));
    Object.assign(this.extra, h);
    if (this.live) Object.assign(this.live, h);
  }

  /** Answer ops requests on `requestFilter` (a shared subscription when several fleet workers share them). */
  async start(client: MqttClient, requestFilter: string = FLEET_SUBSCRIPTIONS.opsReq): Promise<void> {
    this.live = Object.assign(this.handlers(), this.extra);
    this.responder = new RpcResponder(client, OPS_METHODS, this.live, {
      requestFilter,
      log,
    });
    await this.responder.start();
  }

  async stop(): Promise<void> {
    await this.responder?.stop();
  }
}
