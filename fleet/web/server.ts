/**
 * The fleet's HTTP server (one fastify instance) as a fleet feature: `webFeature()` in the fleet's
 * features. When every feature has started (FleetFeature.ready) it registers, in order:
 *
 *   /health, /metrics                     no session (fleet/web/health.ts, metrics.ts)
 *   /api/session                          sign in, who am I, sign out (./session.ts)
 *   /api/v1/<method>                      every ops method, GET (viewer) or POST (./api.ts)
 *   /api/v1/live                          server-sent events (./live.ts)
 *   /api/v1/voicemail/:id/audio           a stored voicemail, with Range (./voicemail-audio.ts)
 *   /api/openapi.json                     the OpenAPI 3 document made from the TypeBox schemas
 *   what other features asked for         fleet.httpPlugins (the alerts' acknowledgement links)
 *
 * then listens on http.host:http.port (HTTPS with http.tlsCertFile). A taken port stops the start with
 * a message saying which setting to change.
 */
import { readFileSync } from 'node:fs';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { SOFTWARE_VERSION } from '../../shared/version.js';
import type { AlertsFeature } from '../alerts/feature.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import { SqlStore } from '../store/sql-store.js';
import { WebSessionStore } from '../store/web-sessions.js';
import { opsRoutes } from './api.js';
import { useErrorShape } from './errors.js';
import { healthRoute } from './health.js';
import { LiveStream, liveRoute } from './live.js';
import { type AlertFigures, FleetMetrics, metricsRoute } from './metrics.js';
import { SESSION_COOKIE, Sessions } from './session.js';
import { uiStatic } from './ui-static.js';
import { clinicOfVoicemail, voicemailAudioRoute } from './voicemail-audio.js';
import { voicemailListRoute } from './voicemail-list.js';

const log = getLogger('fleet:web');

export interface WebFeatureOptions {
  /** Alert figures for /metrics (default: from the alerts feature when it runs). */
  alertFigures?: () => AlertFigures | undefined;
}

/** The error a taken port gives, saying what to change. */
export function httpPortInUseError(host: string, port: number): CallboxError {
  return new CallboxError(
    ErrorCode.ConfigInvalid,
    `the fleet's HTTP server cannot listen on ${host}:${port}: the port is in use (another fleet, or another web ` +
      'server?). Choose another port: set http.port in the fleet configuration file or ' +
      'CALLBOX_FLEET__HTTP__PORT=<port> (0: any free port)',
    { host, port, field: 'http.port' },
  );
}

export class WebFeature implements FleetFeature {
  readonly name = 'web';
  app: FastifyInstance | undefined;
  /** Where the server listens (http://host:port), once ready. */
  url = '';
  metrics: FleetMetrics | undefined;
  live: LiveStream | undefined;
  sessions: WebSessionStore | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fleet: Fleet,
    private readonly opts: WebFeatureOptions = {},
  ) {}

  start(): void {
    // The routes are added once every feature has started and added its ops methods and plugins (ready).
    const store = this.fleet.store;
    if (!(store instanceof SqlStore)) {
      throw new CallboxError(ErrorCode.Internal, 'the web feature needs a SQL fleet store (SQLite or PostgreSQL)');
    }
    this.sessions = new WebSessionStore(store);
    this.fleet.opsApi?.addClinicOf('voicemail', (p) => clinicOfVoicemail(this.fleet, String(p.voicemailId ?? '')));
  }

  async ready(): Promise<void> {
    const f = this.fleet;
    const cfg = f.config.http;
    const ops = f.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the web feature needs the fleet ops API running');
    const tls = cfg.tlsCertFile && cfg.tlsKeyFile;
    const app = Fastify({
      logger: false,
      bodyLimit: 1_048_576,
      ...(tls
        ? { https: { cert: readFileSync(cfg.tlsCertFile as string), key: readFileSync(cfg.tlsKeyFile as string) } }
        : {}),
    }) as unknown as FastifyInstance;
    this.app = app;
    // Requests are checked by shared/validate.ts (errors naming the field, value and what is accepted) and
    // answers are sent as they are: the schemas on the routes are what the OpenAPI document shows.
    app.setValidatorCompiler(() => () => true);
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    useErrorShape(app, log);
    await app.register(cookie);
    await app.register(csrf, {
      sessionPlugin: '@fastify/session', // our own session (./session.ts) holds the CSRF secret in req.session
      getToken: (req) => {
        const t = req.headers['x-csrf-token'];
        return typeof t === 'string' ? t : '';
      },
    });
    await app.register(rateLimit, { global: false });
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Callbox fleet API',
          version: SOFTWARE_VERSION,
          description:
            'The ops API over HTTP. Sign in with POST /api/session; the session cookie is sent by the browser; ' +
            'send the csrfToken as the x-csrf-token header with every POST, PUT, PATCH and DELETE. Every refusal ' +
            'has the shape {error: {code, message, field?, value?, accepted?}}.',
        },
        components: {
          securitySchemes: {
            session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
            csrf: { type: 'apiKey', in: 'header', name: 'x-csrf-token' },
          },
        },
      },
    });
    app.decorateRequest('caller', null);
    app.decorateRequest('session', null);
    app.decorateRequest('webSession', null);
    const sessions = new Sessions(f.store, this.sessions as WebSessionStore, ops, {
      idleMs: cfg.sessionIdleMin * 60_000,
      absoluteMs: cfg.sessionAbsoluteH * 3_600_000,
      secureCookies: cfg.secureCookies,
      loginPerMinute: cfg.loginPerMinute,
    });
    app.addHook('onRequest', async (req) => {
      if (req.url.startsWith('/api/')) await sessions.resolve(req);
    });
    healthRoute(app, f);
    const alertFigures = (): AlertFigures | undefined => {
      const a = f.feature<AlertsFeature>('alerts')?.alerts;
      return a
        ? { byState: () => a.store.countActiveByState(), deliveriesFailed: () => a.store.countDeliveries('failed') }
        : undefined;
    };
    this.metrics = new FleetMetrics(f, this.opts.alertFigures ?? alertFigures);
    metricsRoute(app, this.metrics, cfg.metricsTokenFile);
    sessions.routes(app, Boolean(tls) || cfg.secureCookies);
    opsRoutes(app, ops);
    voicemailAudioRoute(app, f);
    voicemailListRoute(app, f);
    this.live = new LiveStream(f, cfg.liveBuffer);
    await this.live.start();
    const live = this.live;
    sessions.onEnded = (idHash) => live.endSession(idHash);
    liveRoute(app, this.live);
    app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    for (const p of f.httpPlugins) await app.register(p.plugin, p.options);
    await app.register(uiStatic); // the dashboard at / (fleet/web/ui, built by npm run build:web)
    try {
      this.url = await app.listen({ host: cfg.host, port: cfg.port });
    } catch (e) {
      await app.close().catch(() => undefined);
      this.app = undefined;
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw httpPortInUseError(cfg.host, cfg.port);
      throw new CallboxError(
        ErrorCode.ConfigInvalid,
        `the fleet's HTTP server cannot listen on ${cfg.host}:${cfg.port}: ${describeError(e)}`,
      );
    }
    const purge = () => {
      const now = Date.now();
      this.sessions
        ?.purge(new Date(now).toISOString(), new Date(now - cfg.sessionIdleMin * 60_000).toISOString())
        .catch((err) => log.warn({ err }, 'purging ended sessions failed'));
    };
    this.purgeTimer = setInterval(purge, 600_000);
    this.purgeTimer.unref();
    log.info({ url: this.url }, 'HTTP API and dashboard served');
  }

  async stop(): Promise<void> {
    clearInterval(this.purgeTimer);
    this.metrics?.stop();
    await this.live?.stop();
    await this.app?.close().catch(() => undefined);
  }
}

export function webFeature(opts: WebFeatureOptions = {}): (fleet: Fleet) => WebFeature {
  return (fleet) => new WebFeature(fleet, opts);
}
