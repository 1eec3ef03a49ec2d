/**
 * Handlers of the figures, telemetry and export ops methods
 * (FIGURES_OPS_METHODS in shared/contract/figures-ops.ts, part of
 * OPS_METHODS), added to the fleet's OpsApi with its authorisation (the
 * user behind the request topic, checked for the method's role).
 *
 * Caller numbers in exports: in clear for operator and admin, masked to
 * their last four digits (shared/log.ts maskNumber) for viewer.
 */
import type { FIGURES_OPS_METHODS, FiguresOpsMethod } from '../../shared/contract/figures-ops.js';
import type { ParamsOf } from '../../shared/contract/rpc.js';
import type { Store } from '../store/types.js';
import type { FiguresReader } from './reader.js';
import type { FiguresService } from './service.js';

type T = typeof FIGURES_OPS_METHODS;
type Ctx = { topic: string; id: string };
export type Authorize = (method: FiguresOpsMethod, ctx: Ctx) => Promise<string>;

/** May this ops role read caller numbers in clear? */
export function numbersInClear(role: string | undefined): boolean {
  return role === 'operator' || role === 'admin';
}

export function figuresOpsHandlers(
  service: FiguresService,
  reader: Pick<FiguresReader, 'rebuild'>,
  store: Pick<Store, 'getOpsUser'>,
  authorize: Authorize,
) {
  type P<M extends FiguresOpsMethod> = ParamsOf<T, M>;
  const clear = async (actor: string) => numbersInClear((await store.getOpsUser(actor.replace(/^ops:/, '')))?.role);
  return {
    'figures.clinic': async (p: P<'figures.clinic'>, ctx: Ctx) => {
      await authorize('figures.clinic', ctx);
      return service.clinicFigures(p);
    },
    'figures.heatmap': async (p: P<'figures.heatmap'>, ctx: Ctx) => {
      await authorize('figures.heatmap', ctx);
      return service.heatmap(p);
    },
    'figures.targets.get': async (p: P<'figures.targets.get'>, ctx: Ctx) => {
      await authorize('figures.targets.get', ctx);
      return service.targets(p.clinic);
    },
    'figures.targets.set': async (p: P<'figures.targets.set'>, ctx: Ctx) =>
      service.setTargets(await authorize('figures.targets.set', ctx), p),
    'figures.rebuild': async (_p: P<'figures.rebuild'>, ctx: Ctx) => {
      await authorize('figures.rebuild', ctx);
      return reader.rebuild();
    },
    'telemetry.history': async (p: P<'telemetry.history'>, ctx: Ctx) => {
      await authorize('telemetry.history', ctx);
      return service.telemetryHistory(p);
    },
    'export.calls': async (p: P<'export.calls'>, ctx: Ctx) =>
      service.exportCalls(p, await clear(await authorize('export.calls', ctx))),
    'export.events': async (p: P<'export.events'>, ctx: Ctx) =>
      service.exportEvents(p, await clear(await authorize('export.events', ctx))),
    'export.alerts': async (p: P<'export.alerts'>, ctx: Ctx) =>
      service.exportAlerts(p, await clear(await authorize('export.alerts', ctx))),
  };
}
