/**
 * The alert engine as a fleet feature: `Fleet.start(config, { features:
 * [alertsFeature()] })`. On start it opens the alert store (beside the fleet
 * store), starts the engine on the fleet bus with the fleet's device
 * commands and live presence, adds its ops methods to the fleet's ops API
 * (and tells it which clinic an alert is of, for clinic users), and hands its acknowledgement-link plugin to the fleet's HTTP
 * server (fleet.httpPlugins, served by the web feature, fleet/web).
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import type { Clock } from './engine.js';
import { type Alerts, startAlerts } from './index.js';
import { alertOpsHandlers } from './ops.js';
import { unreachableReason } from './reach.js';

const log = getLogger('fleet:alerts');

export interface AlertsFeatureOptions {
  /** Serve the acknowledgement links on the fleet's HTTP server (default true; needs the web feature). */
  serveHttp?: boolean;
  clock?: Clock;
}

export class AlertsFeature implements FleetFeature {
  readonly name = 'alerts';
  alerts: Alerts | undefined;

  /** Where the links are served (http://host:port): the fleet's HTTP server, once every feature is ready. */
  get httpUrl(): string {
    return this.opts.serveHttp === false ? '' : (this.fleet.feature<{ url: string } & FleetFeature>('web')?.url ?? '');
  }

  constructor(
    private readonly fleet: Fleet,
    private readonly opts: AlertsFeatureOptions = {},
  ) {}

  async start(): Promise<void> {
    const f = this.fleet;
    this.alerts = await startAlerts({
      bus: f.bus,
      store: f.store,
      commands: f.commands,
      storeConfig: f.config.store,
      // Several fleet workers lease alert steps and the event cursor each under its own name.
      config: f.config.instance.id ? { ...f.config.alerts, instance: f.config.instance.id } : f.config.alerts,
      isOnline: (id) => f.presence.isOnline(id),
      ...(this.opts.clock ? { clock: this.opts.clock } : {}),
    });
    const engine = this.alerts.engine;
    const ops = f.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the alerts feature needs the fleet ops API running');
    ops.extend((actor) => alertOpsHandlers(engine, actor, (e) => f.store.appendAudit(e)));
    ops.addClinicOf('alert', async (p) => {
      const id = typeof p.id === 'string' ? p.id : undefined;
      const code = typeof p.code === 'string' ? p.code : undefined;
      const alert = id ? (await engine.get(id)).alert : code ? await engine.byCode(code) : undefined;
      return alert?.clinicId ?? null;
    });
    if (this.opts.serveHttp !== false) f.httpPlugins.push(this.alerts.http);
    await this.warnUnreachable().catch((err) => log.warn({ err }, 'checking the alert channels failed'));
  }

  /** Warn about each clinic whose alerts would reach nobody (fleet/alerts/reach.ts). Returns the warnings. */
  async warnUnreachable(): Promise<string[]> {
    const engine = this.alerts?.engine;
    if (!engine) return [];
    const out: string[] = [];
    for (const clinic of await this.fleet.store.listClinics({ limit: 1000 })) {
      const why = unreachableReason(
        this.fleet.config.alerts,
        await engine.settingsOf(clinic.id),
        await engine.contactsOf(clinic.id),
      );
      if (!why) continue;
      const text =
        `alerts of clinic "${clinic.name}" (${clinic.id}) reach nobody: ${why}. ` +
        `Add contacts or a webhook: fleet alerts settings set ${clinic.id} FILE (docs/CONFIGURATION.md, alerts.*)`;
      log.warn({ clinicId: clinic.id }, text);
      out.push(text);
    }
    return out;
  }

  async stop(): Promise<void> {
    await this.alerts?.stop();
  }
}

export function alertsFeature(opts: AlertsFeatureOptions = {}): (fleet: Fleet) => AlertsFeature {
  return (fleet) => new AlertsFeature(fleet, opts);
}
