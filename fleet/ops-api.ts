/**
 * The ops API: the handlers of the OPS_METHODS table (shared/contract/ops.ts), and the check of who calls.
 * Two transports call the same handlers with a caller identity: over MQTT an RpcResponder on
 * callbox/v1/_ops/+/req (the user is the topic's: the broker lets only ops:<user> publish there); over
 * HTTP the fleet's web server (fleet/web) with the user of the sign-in session, through call().
 * Before any handler runs the caller is looked up in the store (unknown or disabled: refused), checked
 * for the method's role, and a clinic user (role clinic) is kept to its own clinic as the method's
 * ClinicScope says (params checked or set, or the answer filtered).
 */
import type { MqttClient } from 'mqtt';
import { DEFAULT_PAGE, OPS_METHODS, type OpsMethod, type OpsRole, ROLE_RANK } from '../shared/contract/ops.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { FLEET_SUBSCRIPTIONS, parseTopic } from '../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { newRequestId } from '../shared/ids.js';
import { getLogger } from '../shared/log.js';
import { type Handlers, type RequestContext, RpcResponder } from '../shared/rpc.js';
import { validate } from '../shared/validate.js';
import { SOFTWARE_VERSION } from '../shared/version.js';
import type { DeviceCommands } from './commands.js';
import type { Presence } from './presence.js';
import type { Registry } from './registry.js';
import type { Box, Store } from './store/types.js';

const log = getLogger('fleet:ops');

type T = typeof OPS_METHODS;

/** Who calls an ops method, as the store knows them now. */
export interface Caller {
  user: string;
  role: OpsRole;
  /** A clinic user's clinic (role clinic); null for the others. */
  clinicId: string | null;
}

/** The clinic a request's subject (an alert, a voicemail) belongs to; features add these (addClinicOf). */
export type ClinicOf = (params: Record<string, unknown>) => Promise<string | null>;

/** Refused: NotAuthorized with `status` 403 in its details (the HTTP API's status). */
function refused(message: string, details: Record<string, unknown> = {}): CallboxError {
  return new CallboxError(ErrorCode.NotAuthorized, message, { status: 403, ...details });
}

export class OpsApi {
  private responder: RpcResponder<T> | undefined;
  /** Callers checked for a request (its context object): the handlers' actor() reads them. */
  private readonly callers = new WeakMap<RequestContext, Caller>();
  private readonly clinicOf = new Map<'alert' | 'voicemail', ClinicOf>();

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly commands: DeviceCommands,
    /** Who is online: a command for an offline box is queued or refused at once (boxes.command). */
    private readonly presence?: Pick<Presence, 'isOnline' | 'lastSeen'>,
    private readonly commandTimeoutMs = 15_000,
  ) {}

  /** The caller named `user`, as the store has them (unknown or disabled: NotAuthorized). */
  async identify(user: string | undefined): Promise<Caller> {
    const found = user ? await this.store.getOpsUser(user) : undefined;
    if (!user || !found || found.disabledAt) {
      throw new CallboxError(ErrorCode.NotAuthorized, `ops user ${user ?? '?'} is unknown or disabled`, {
        status: 401,
      });
    }
    return { user, role: found.role, clinicId: found.clinicId ?? null };
  }

  /** May this caller call this method at all? (The clinic scope of its params is scope()'s.) */
  authorize(method: OpsMethod, caller: Caller): void {
    const spec = OPS_METHODS[method];
    if (caller.role === 'clinic') {
      if (!('clinic' in spec) || !spec.clinic) {
        throw refused(`${method} is not open to clinic users; ops:${caller.user} is a clinic user`, { method });
      }
      if (!caller.clinicId) throw refused(`clinic user ops:${caller.user} has no clinic`);
      return;
    }
    const need = spec.role;
    if (ROLE_RANK[caller.role] < ROLE_RANK[need]) {
      throw refused(`${method} needs the ${need} role; ops:${caller.user} is ${caller.role} (an admin can change it)`, {
        method,
      });
    }
  }

  /** A feature tells which clinic an alert or a voicemail belongs to (null: unknown). */
  addClinicOf(kind: 'alert' | 'voicemail', fn: ClinicOf): void {
    this.clinicOf.set(kind, fn);
  }

  /** Keep a clinic user's request to its clinic: the params to run with (checked or completed). */
  async scope<P>(method: OpsMethod, params: P, caller: Caller): Promise<P> {
    if (caller.role !== 'clinic') return params;
    const own = caller.clinicId as string;
    const spec = OPS_METHODS[method] as { clinic?: string };
    const p = { ...(params as Record<string, unknown>) };
    const other = (what: string) =>
      refused(`${what} is not of clinic ${own}; clinic user ops:${caller.user} sees its own clinic only`, {
        field: 'clinicId',
      });
    switch (spec.clinic) {
      case 'none':
      case 'clinics':
        return params;
      case 'clinicId':
        if (p.clinicId !== undefined && p.clinicId !== own) throw other(`clinic ${String(p.clinicId)}`);
        p.clinicId = own;
        return p as P;
      case 'clinic': {
        // A clinic by id or name (the figures): it must be the caller's own.
        if (p.clinic !== undefined) {
          const c = await this.registry.resolveClinic(String(p.clinic)).catch(() => undefined);
          if (!c || c.id !== own) throw other(`clinic ${String(p.clinic)}`);
        }
        p.clinic = own;
        return p as P;
      }
      case 'box': {
        if (typeof p.box !== 'string') throw refused(`${method} by a clinic user needs box (a box of its clinic)`);
        const box = await this.registry.resolveBox(p.box).catch(() => undefined);
        if (!box || box.clinicId !== own) throw other(`box ${p.box}`);
        return params;
      }
      case 'alert':
      case 'voicemail': {
        const find = this.clinicOf.get(spec.clinic);
        const clinic = find ? await find(p) : null;
        if (clinic !== own) throw other(`that ${spec.clinic}`);
        return params;
      }
      default:
        throw refused(`${method} is not open to clinic users`);
    }
  }

  /** A clinic user's answer, cut to its clinic where the method lists clinics. */
  private cut(method: OpsMethod, result: unknown, caller: Caller): unknown {
    const spec = OPS_METHODS[method] as { clinic?: string };
    if (caller.role !== 'clinic' || spec.clinic !== 'clinics' || !Array.isArray(result)) return result;
    return result.filter((c: { id?: string }) => c.id === caller.clinicId);
  }

  /** The ops user behind a request, checked before its handler ran ("ops:<user>"). */
  private async actor(method: OpsMethod, ctx: RequestContext): Promise<string> {
    let caller = this.callers.get(ctx);
    if (!caller) {
      // A handler called without the check (a feature's own use): check now.
      caller = await this.identify(parseTopic(ctx.topic)?.user);
      this.authorize(method, caller);
    }
    return `ops:${caller.user}`;
  }

  /**
   * Call a method as `caller` (the HTTP API): params validated against the method's schema
   * (ValidationFailed naming the field), the caller checked, the handler run.
   */
  async call(method: OpsMethod, params: unknown, caller: Caller, id = newRequestId()): Promise<unknown> {
    const spec = OPS_METHODS[method];
    const handler = this.build()[method];
    if (!spec || !handler) {
      throw new CallboxError(ErrorCode.UnknownMethod, `unknown method "${method}"`, { status: 404 });
    }
    const valid = validate(spec.params, params, `params of ${method}`);
    const ctx: RequestContext = { topic: `http:${caller.user}`, id };
    return (handler as (p: unknown, c: RequestContext, who?: Caller) => Promise<unknown>)(valid, ctx, caller);
  }

  /** Every method this API answers (the table's, once their feature added them). */
  methods(): OpsMethod[] {
    return Object.keys(this.build()) as OpsMethod[];
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
        const clinic = await r.resolveClinic(p.clinicId);
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
        const actor = await this.actor('users.create', ctx);
        if (p.role === 'clinic' && !p.clinic) {
          throw new CallboxError(ErrorCode.ValidationFailed, 'a clinic user needs its clinic (clinic: id or name)', {
            field: 'clinic',
            value: null,
            accepted: 'a clinic id or name',
          });
        }
        if (p.role !== 'clinic' && p.clinic) {
          throw new CallboxError(ErrorCode.ValidationFailed, `clinic is for role clinic only, not ${p.role}`, {
            field: 'clinic',
            value: p.clinic,
            accepted: 'no clinic (or role clinic)',
          });
        }
        const clinicId = p.clinic ? (await r.resolveClinic(p.clinic)).id : null;
        const u = await r.createOpsUser(actor, p.name, p.role, undefined, clinicId);
        return { name: u.name, role: u.role, clinicId: u.clinicId, username: u.username, password: u.password };
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
  /** The handlers as written (unchecked), and the checked ones the transports call. */
  private raw: Handlers<T> | undefined;
  private live: Handlers<T> | undefined;

  /**
   * Add a feature's handlers (the alert engine's ALERT_OPS_METHODS) for methods of OPS_METHODS, before or
   * after start; `actor` gives the caller checked for the method ("ops:<user>").
   */
  extend(make: (actor: (method: OpsMethod, ctx: RequestContext) => Promise<string>) => Handlers<T>): void {
    const h = make((method, ctx) => this.actor(method, ctx));
    Object.assign(this.extra, h);
    if (this.raw) this.install(h);
  }

  private install(h: Handlers<T>): void {
    Object.assign(this.raw as Handlers<T>, h);
    const live = this.live as Record<string, unknown>;
    for (const m of Object.keys(h) as OpsMethod[]) {
      const inner = (this.raw as Record<string, (p: unknown, c: RequestContext) => Promise<unknown>>)[m];
      if (!inner) continue;
      live[m] = async (params: unknown, ctx: RequestContext, known?: Caller) => {
        const caller = known ?? (await this.identify(parseTopic(ctx.topic)?.user));
        this.authorize(m, caller);
        const p = await this.scope(m, params, caller);
        this.callers.set(ctx, caller);
        return this.cut(m, await inner(p, ctx), caller);
      };
    }
  }

  /** Build the checked handlers (once; the HTTP API may ask before the MQTT responder starts). */
  private build(): Handlers<T> {
    if (!this.live) {
      this.raw = {};
      this.live = {};
      this.install(Object.assign(this.handlers(), this.extra));
    }
    return this.live;
  }

  /**
   * Answer ops requests on `requestFilter` (a shared subscription when several fleet workers share them;
   * subscribe false: they come from the engine's queue group instead, cluster mode).
   */
  async start(
    client: MqttClient,
    requestFilter: string = FLEET_SUBSCRIPTIONS.opsReq,
    opts: { subscribe?: boolean } = {},
  ): Promise<void> {
    this.responder = new RpcResponder(client, OPS_METHODS, this.build(), {
      requestFilter,
      log,
      subscribe: opts.subscribe,
    });
    await this.responder.start();
  }

  async stop(): Promise<void> {
    await this.responder?.stop();
  }
}
