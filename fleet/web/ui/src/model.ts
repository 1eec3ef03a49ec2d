/** The shapes the pages read from the fleet (types only: the contract in shared/ is the source of truth). */
import type { Static } from '@sinclair/typebox';
import type { TelemetryPointSchema } from '../../../../shared/contract/figures-ops.js';
import type { BoxSchema } from '../../../../shared/contract/ops.js';

export type Box = Static<typeof BoxSchema> & { openAlerts?: number };

/** One telemetry sample of a box as the fleet stores it (the newest is on the box: Box.telemetry). */
export type TelemetryPoint = Static<typeof TelemetryPointSchema>;

/** An alert (fleet/alerts/types.ts Alert). */
export interface Alert {
  id: string;
  clinicId: string;
  condition: string;
  severity: string;
  state: 'open' | 'acknowledged' | 'resolved';
  shortCode: string;
  text: string;
  deviceId: string | null;
  occurrences: number;
  firstAt: string;
  lastAt: string;
  ackedAt: string | null;
  ackedBy: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  nextStepAt: string | null;
  updatedAt: string;
}

export interface Delivery {
  id: number;
  step: number;
  channel: string;
  target: string;
  attempt: number;
  status: 'sent' | 'failed' | 'skipped';
  error: string | null;
  detail: string | null;
  at: string;
}

export interface AlertLogEntry {
  id: number;
  at: string;
  action: string;
  by: string | null;
  detail: string | null;
}

/** Does the configuration the box reports differ from the one the fleet wants? */
export function drift(b: Box): 'in sync' | 'pending' | 'refused' | 'none' {
  if (b.desiredVersion === 0) return 'none';
  if (b.reportedState === 'refused') return 'refused';
  return b.reportedVersion === b.desiredVersion ? 'in sync' : 'pending';
}
