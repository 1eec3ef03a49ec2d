/** A clinic's figure targets: stored row -> values with defaults (FigureTargetsSchema). */
import type { Static } from '@sinclair/typebox';
import type { FigureTargetsSchema } from '../../shared/contract/figures-ops.js';
import type { Row } from '../store/sql-store.js';

export type Targets = Static<typeof FigureTargetsSchema>;

const DEFAULT_TARGETS: Targets = { serviceLevelTargetS: 30, shortAbandonS: 10, repeatWindowH: 24 };

export function targetsOf(r: Row | undefined): Targets {
  if (!r) return { ...DEFAULT_TARGETS };
  return {
    serviceLevelTargetS: Number(r.service_level_target_s),
    shortAbandonS: Number(r.short_abandon_s),
    repeatWindowH: Number(r.repeat_window_h),
  };
}
