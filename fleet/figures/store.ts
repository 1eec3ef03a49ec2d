/**
 * The figures store: rollups, per-clinic targets, stored telemetry and the
 * rows of the exports, in the fleet's database on the fleet store's
 * connection (SQLite) or pool (PostgreSQL), with its own migrations
 * (migrations.ts). SQL both dialects accept; times are ISO text.
 */
import type { Telemetry } from '../../shared/contract/messages.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { type Dialect, MigrationRunner } from '../store/migrate.js';
import type { Driver, Row, SqlStore } from '../store/sql-store.js';
import type { PositionedEvent } from '../store/types.js';
import { addInto, type Counters, zeroCounters, zeroHistogram } from './math.js';
import { COUNTER_COLUMNS, type Counter, FIGURES_MIGRATIONS, HIST_COLUMNS } from './migrations.js';
import { RollupBatch, type RollupDeps } from './rollup.js';
import { type Targets, targetsOf } from './targets.js';

/** The figures' cursor over stored events (event_cursors). */
export const FIGURES_CURSOR = 'figures';

export interface RollupRow {
  bucket: string;
  weekday: number;
  hourOfDay: number;
  counters: Counters;
  hist: number[];
}

export interface TelemetryPoint {
  at: string;
  receivedAt: string;
  softwareVersion: string;
  uptimeS: number;
  modemState: string;
  signalDbm: number | null;
  registration: string;
  operator: string | null;
  simPresent: boolean;
  freeDiskBytes: number;
  outboxDepth: number;
  voicemailsPending: number;
  configVersion: number | null;
}

export function telemetryPoint(t: Telemetry, receivedAt: string): TelemetryPoint {
  return {
    at: new Date(t.at).toISOString(),
    receivedAt,
    softwareVersion: t.softwareVersion,
    uptimeS: t.uptimeS,
    modemState: t.modem.state,
    signalDbm: t.modem.signalDbm,
    registration: t.modem.registration,
    operator: t.modem.operator,
    simPresent: t.modem.simPresent,
    freeDiskBytes: t.freeDiskBytes,
    outboxDepth: t.outboxDepth,
    voicemailsPending: t.voicemailsPending,
    configVersion: t.configVersion,
  };
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const json = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

function toRollup(r: Row): RollupRow {
  const counters = zeroCounters();
  for (const k of Object.keys(COUNTER_COLUMNS) as Counter[]) counters[k] = num(r[COUNTER_COLUMNS[k]]);
  return {
    bucket: String(r.bucket),
    weekday: num(r.weekday),
    hourOfDay: num(r.hour_of_day),
    counters,
    hist: HIST_COLUMNS.map((c) => num(r[c])),
  };
}

/** Thrown inside the apply transaction when the cursor moved under us: nothing is written. */
class CursorMoved extends Error {}

export class FiguresStore {
  private readonly runner: MigrationRunner;

  constructor(
    readonly db: Driver,
    readonly dialect: Dialect,
  ) {
    this.runner = new MigrationRunner(db, dialect, FIGURES_MIGRATIONS);
  }

  /** In the fleet store's database, on its connection (closed by the fleet store). */
  static over(store: SqlStore): FiguresStore {
    const { driver, dialect } = store.connection();
    return new FiguresStore(driver, dialect);
  }

  async migrate(): Promise<void> {
    await this.runner.up();
  }

  async migrateDown(version: number): Promise<void> {
    await this.runner.down(version);
  }

  // ---- rollups --------------------------------------------------------------

  /**
   * Apply a batch of stored events and move the cursor from `from` to the last event's position, in one
   * transaction: false (nothing written) if `owner` no longer holds the cursor at `from`.
   */
  async applyBatch(
    events: readonly PositionedEvent[],
    cursor: { owner: string; from: number; now: string; until: string },
    deps: RollupDeps,
  ): Promise<{ moved: boolean; calls: number }> {
    const to = events[events.length - 1]?.pos ?? cursor.from;
    try {
      return await this.db.transaction(async (q) => {
        const moved = await q(
          `UPDATE event_cursors SET pos = $1, updated_at = $2, lease_until = $3
           WHERE name = $4 AND owner = $5 AND pos = $6 RETURNING name`,
          [to, cursor.now, cursor.until, FIGURES_CURSOR, cursor.owner, cursor.from],
        );
        if (moved.length === 0) throw new CursorMoved();
        const batch = new RollupBatch(q, deps);
        await batch.apply(events);
        return { moved: true, calls: batch.calls };
      });
    } catch (e) {
      if (e instanceof CursorMoved) return { moved: false, calls: 0 };
      throw e;
    }
  }

  /** Forget every rollup and call row and put the cursor back to the first event (held by `owner`). */
  async resetForRebuild(owner: string, now: string, until: string): Promise<void> {
    await this.db.transaction(async (q) => {
      const held = await q(
        `UPDATE event_cursors SET pos = 0, updated_at = $1, lease_until = $2 WHERE name = $3 AND owner = $4 RETURNING name`,
        [now, until, FIGURES_CURSOR, owner],
      );
      if (held.length === 0) {
        throw new CallboxError(ErrorCode.Conflict, 'another fleet instance holds the figures cursor: rebuild there');
      }
      await q('DELETE FROM figure_rollups');
      await q('DELETE FROM figure_calls');
    });
  }

  async rollups(clinicId: string, grain: string, fromBucket: string, toBucket: string): Promise<RollupRow[]> {
    const rows = await this.db.query(
      `SELECT * FROM figure_rollups WHERE clinic_id = $1 AND grain = $2 AND bucket >= $3 AND bucket < $4 ORDER BY bucket`,
      [clinicId, grain, fromBucket, toBucket],
    );
    return rows.map(toRollup);
  }

  /** The sum of the day rollups between two bucket starts. */
  async totals(
    clinicId: string,
    fromBucket: string,
    toBucket: string,
  ): Promise<{ counters: Counters; hist: number[] }> {
    const cols = [...Object.values(COUNTER_COLUMNS), ...HIST_COLUMNS];
    const rows = await this.db.query(
      `SELECT ${cols.map((c) => `SUM(${c}) AS ${c}`).join(', ')} FROM figure_rollups
       WHERE clinic_id = $1 AND grain = 'day' AND bucket >= $2 AND bucket < $3`,
      [clinicId, fromBucket, toBucket],
    );
    const r = rows[0] ?? {};
    const counters = zeroCounters();
    addInto(counters, toRollup({ ...r, bucket: '', weekday: 0, hour_of_day: 0 }).counters);
    const hist = zeroHistogram().map((_, i) => num(r[HIST_COLUMNS[i] as string]));
    return { counters, hist };
  }

  /** Offered and answered per weekday (Monday 0) and hour of day, over hour buckets in [from, to). */
  async heatmap(
    clinicId: string,
    fromBucket: string,
    toBucket: string,
  ): Promise<{ weekday: number; hour: number; offered: number; answered: number }[]> {
    const rows = await this.db.query(
      `SELECT weekday, hour_of_day, SUM(offered) AS offered, SUM(answered) AS answered FROM figure_rollups
       WHERE clinic_id = $1 AND grain = 'hour' AND bucket >= $2 AND bucket < $3 GROUP BY weekday, hour_of_day`,
      [clinicId, fromBucket, toBucket],
    );
    return rows.map((r) => ({
      weekday: num(r.weekday),
      hour: num(r.hour_of_day),
      offered: num(r.offered),
      answered: num(r.answered),
    }));
  }

  // ---- targets --------------------------------------------------------------

  async getTargets(clinicId: string): Promise<Targets> {
    return targetsOf((await this.db.query('SELECT * FROM figure_targets WHERE clinic_id = $1', [clinicId]))[0]);
  }

  async putTargets(clinicId: string, t: Targets, by: string): Promise<Targets> {
    await this.db.query(
      `INSERT INTO figure_targets (clinic_id, service_level_target_s, short_abandon_s, repeat_window_h, updated_by, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (clinic_id) DO UPDATE SET service_level_target_s = excluded.service_level_target_s,
         short_abandon_s = excluded.short_abandon_s, repeat_window_h = excluded.repeat_window_h,
         updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
      [clinicId, t.serviceLevelTargetS, t.shortAbandonS, t.repeatWindowH, by, new Date().toISOString()],
    );
    return t;
  }

  // ---- telemetry ------------------------------------------------------------

  /** Keep a sample and put it on the box row as the newest (a late older sample does not replace a newer one). */
  async putTelemetry(deviceId: string, p: TelemetryPoint): Promise<void> {
    const data = JSON.stringify(p);
    await this.db.transaction(async (q) => {
      await q(
        'INSERT INTO telemetry (device_id, at, received_at, data) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, at) DO NOTHING',
        [deviceId, p.at, p.receivedAt, data],
      );
      const cur = await q('SELECT last_telemetry FROM boxes WHERE device_id = $1', [deviceId]);
      const last = cur[0]?.last_telemetry;
      if (cur.length === 0) return;
      if (last !== null && last !== undefined && json<TelemetryPoint>(last).at > p.at) return;
      await q('UPDATE boxes SET last_telemetry = $1 WHERE device_id = $2', [data, deviceId]);
    });
  }

  async telemetryHistory(
    deviceId: string,
    f: { from?: string; to?: string; limit: number },
  ): Promise<TelemetryPoint[]> {
    const params: unknown[] = [deviceId];
    let where = 'device_id = $1';
    if (f.from) {
      params.push(new Date(f.from).toISOString());
      where += ` AND at >= $${params.length}`;
    }
    if (f.to) {
      params.push(new Date(f.to).toISOString());
      where += ` AND at < $${params.length}`;
    }
    params.push(f.limit);
    const rows = await this.db.query(
      `SELECT data FROM telemetry WHERE ${where} ORDER BY at DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => json<TelemetryPoint>(r.data));
  }

  async latestTelemetry(deviceId: string): Promise<TelemetryPoint | null> {
    const rows = await this.db.query('SELECT last_telemetry FROM boxes WHERE device_id = $1', [deviceId]);
    const v = rows[0]?.last_telemetry;
    return v === null || v === undefined ? null : json<TelemetryPoint>(v);
  }

  /** Delete samples received before `before`; returns how many. */
  async pruneTelemetry(before: string): Promise<number> {
    const rows = await this.db.query('DELETE FROM telemetry WHERE received_at < $1 RETURNING device_id', [before]);
    return rows.length;
  }

  // ---- rows for the exports -----------------------------------------------------

  async exportCalls(f: {
    clinicIds: string[] | null;
    from: string;
    to: string;
    after: string | null;
    limit: number;
  }): Promise<Row[]> {
    const params: unknown[] = [f.from, f.to];
    let where = 'ended = 1 AND clinic_id IS NOT NULL AND started_at >= $1 AND started_at < $2';
    if (f.clinicIds) {
      where += ` AND clinic_id IN (${placeholders(params, f.clinicIds)})`;
    }
    if (f.after) {
      params.push(f.after);
      where += ` AND (started_at || '|' || device_id || '|' || call_id) > $${params.length}`;
    }
    params.push(f.limit);
    return this.db.query(
      `SELECT * FROM figure_calls WHERE ${where} ORDER BY started_at, device_id, call_id LIMIT $${params.length}`,
      params,
    );
  }

  async exportEvents(f: {
    deviceIds: string[] | null;
    from: string;
    to: string;
    after: number | null;
    limit: number;
  }): Promise<Row[]> {
    const params: unknown[] = [f.from, f.to];
    let where = 'at >= $1 AND at < $2';
    if (f.deviceIds) {
      if (f.deviceIds.length === 0) return [];
      where += ` AND device_id IN (${placeholders(params, f.deviceIds)})`;
    }
    if (f.after !== null) {
      params.push(f.after);
      where += ` AND pos > $${params.length}`;
    }
    params.push(f.limit);
    return this.db.query(`SELECT * FROM events WHERE ${where} ORDER BY pos LIMIT $${params.length}`, params);
  }

  async exportAlerts(f: {
    clinicIds: string[] | null;
    from: string;
    to: string;
    after: string | null;
    limit: number;
  }): Promise<Row[]> {
    const exists =
      this.dialect === 'sqlite'
        ? await this.db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alerts'")
        : await this.db.query("SELECT to_regclass('alerts') AS name");
    if (exists.length === 0 || exists[0]?.name === null) return [];
    const params: unknown[] = [f.from, f.to];
    let where = 'first_at >= $1 AND first_at < $2';
    if (f.clinicIds) {
      where += ` AND clinic_id IN (${placeholders(params, f.clinicIds)})`;
    }
    if (f.after) {
      params.push(f.after);
      where += ` AND (first_at || '|' || id) > $${params.length}`;
    }
    params.push(f.limit);
    return this.db.query(`SELECT * FROM alerts WHERE ${where} ORDER BY first_at, id LIMIT $${params.length}`, params);
  }
}

/** `$n, $n+1, …` for these values, appended to params (an IN list). */
function placeholders(params: unknown[], values: readonly unknown[]): string {
  return values
    .map((v) => {
      params.push(v);
      return `$${params.length}`;
    })
    .join(',');
}
