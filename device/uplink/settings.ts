/**
 * The box's remote settings (shared/contract/settings.ts), applied whole or
 * not at all.
 *
 * offer() takes a desired configuration from the broker (the retained
 * config/desired message or the answer to config.get):
 * 1. decode and validate it with the shared schema (missing sections get
 *    their defaults, unknown fields are errors); a version not newer than
 *    the one in force, or one already refused, is ignored;
 * 2. ask every listener's check() — any may veto with a reason;
 * 3. call every listener's apply(); if one throws, those already applied
 *    get the previous settings back and the version is refused;
 * 4. keep it on disk as the last good configuration (written atomically),
 *    so the box starts with it without the network.
 * The result is the report for config/reported: applied, or refused with
 * the reason, the old version staying in force.
 */
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { type ConfigDesired, ConfigDesiredSchema, type ConfigReported } from '../../shared/contract/messages.js';
import { type DeviceSettings, DeviceSettingsSchema } from '../../shared/contract/settings.js';
import { describeError } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';
import { decodePayload, validate } from '../../shared/validate.js';
import { readIfExists, writeFileAtomic } from './files.js';

export interface SettingsListener {
  /** Who listens (named in a refusal). */
  name: string;
  /** Throw (with a reason) to veto the new settings; nothing has been applied yet. */
  check?(next: DeviceSettings, prev: DeviceSettings): void | Promise<void>;
  /** Put the settings in force. Also called with the previous settings to roll back. */
  apply(next: DeviceSettings, prev: DeviceSettings): void | Promise<void>;
}

export const SETTINGS_FILE = 'settings.json';

export function defaultSettings(): DeviceSettings {
  return validate(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, {}), 'default settings');
}

export class Settings {
  private settings: DeviceSettings = defaultSettings();
  private versionValue: number | null = null;
  private refused = new Set<number>();
  private readonly listeners: SettingsListener[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private readonly file: string;
  private readonly log: Logger;

  constructor(dataDir: string, log?: Logger) {
    this.file = join(dataDir, SETTINGS_FILE);
    this.log = log ?? getLogger('device:uplink:settings');
  }

  get current(): DeviceSettings {
    return this.settings;
  }

  /** Version in force; null while on defaults. */
  get version(): number | null {
    return this.versionValue;
  }

  /** Load the last good configuration from disk (defaults if none or unreadable). */
  async load(): Promise<void> {
    const text = await readIfExists(this.file);
    if (text === undefined) {
      this.log.info('no stored settings: running on defaults until the fleet sends some');
      return;
    }
    try {
      const d = this.decode(text);
      const prev = this.settings;
      this.settings = d.settings;
      this.versionValue = d.version;
      this.log.info({ version: d.version }, 'settings loaded from disk');
      // Listeners registered before the load ran on defaults until now.
      for (const l of this.listeners) await l.apply(this.settings, prev);
    } catch (e) {
      this.log.error({ err: e, file: this.file }, 'stored settings unreadable: running on defaults');
    }
  }

  /** Register a listener; it is called with the settings in force now. Returns the removal. */
  /** Listeners registered and not removed (a stopped box has none). */
  get listenerCount(): number {
    return this.listeners.length;
  }

  async addListener(l: SettingsListener): Promise<() => void> {
    this.listeners.push(l);
    await l.apply(this.settings, this.settings);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private decode(payload: Buffer | string): ConfigDesired {
    const text = typeof payload === 'string' ? payload : payload.toString('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return decodePayload(ConfigDesiredSchema, text, 'desired configuration');
    }
    if (raw && typeof raw === 'object' && 'settings' in raw) {
      const r = raw as { settings: unknown };
      if (r.settings && typeof r.settings === 'object') {
        r.settings = Value.Default(DeviceSettingsSchema, structuredClone(r.settings));
      }
    }
    return validate(ConfigDesiredSchema, raw, 'desired configuration');
  }

  /** Offer a desired configuration; resolves with the report to publish, or undefined if there is nothing to say. */
  offer(payload: Buffer | string | ConfigDesired): Promise<ConfigReported | undefined> {
    const run = this.queue.then(() => this.offerNow(payload));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private report(version: number, state: 'applied' | 'refused', reason?: string): ConfigReported {
    const r: ConfigReported = {
      v: 1,
      version,
      state,
      appliedVersion: this.versionValue,
      at: new Date().toISOString(),
    };
    if (reason !== undefined) r.reason = reason.slice(0, 2000);
    return r;
  }

  private async offerNow(payload: Buffer | string | ConfigDesired): Promise<ConfigReported | undefined> {
    let desired: ConfigDesired;
    try {
      desired =
        typeof payload === 'string' || Buffer.isBuffer(payload)
          ? this.decode(payload)
          : this.decode(JSON.stringify(payload));
    } catch (e) {
      const version = versionOf(payload);
      if (version !== undefined && this.refused.has(version)) return undefined;
      if (version !== undefined && this.versionValue !== null && version <= this.versionValue) return undefined;
      if (version !== undefined) this.refused.add(version);
      this.log.warn({ version, reason: describeError(e) }, 'desired configuration refused: invalid');
      return this.report(version ?? 0, 'refused', describeError(e));
    }
    if (this.versionValue !== null && desired.version <= this.versionValue) return undefined;
    if (this.refused.has(desired.version)) return undefined;
    const prev = this.settings;
    const next = desired.settings;
    for (const l of this.listeners) {
      try {
        await l.check?.(next, prev);
      } catch (e) {
        this.refused.add(desired.version);
        const reason = `refused by ${l.name}: ${describeError(e)}`;
        this.log.warn({ version: desired.version, reason }, 'desired configuration refused');
        return this.report(desired.version, 'refused', reason);
      }
    }
    const applied: SettingsListener[] = [];
    for (const l of this.listeners) {
      try {
        await l.apply(next, prev);
        applied.push(l);
      } catch (e) {
        for (const done of applied.reverse()) {
          await Promise.resolve(done.apply(prev, next)).catch((err: unknown) =>
            this.log.error({ err, listener: done.name }, 'rollback of settings failed'),
          );
        }
        this.refused.add(desired.version);
        const reason = `${l.name} could not apply it: ${describeError(e)}`;
        this.log.error({ version: desired.version, reason }, 'desired configuration refused; previous one restored');
        return this.report(desired.version, 'refused', reason);
      }
    }
    this.settings = next;
    this.versionValue = desired.version;
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(desired)}\n`, 0o600);
    } catch (e) {
      this.log.error({ err: e }, 'applied settings could not be stored; the box would start on the previous ones');
    }
    this.log.info({ version: desired.version }, 'settings applied');
    return this.report(desired.version, 'applied');
  }
}

function versionOf(payload: unknown): number | undefined {
  let v: unknown = payload;
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
    try {
      v = JSON.parse(payload.toString());
    } catch {
      return undefined;
    }
  }
  const version = (v as { version?: unknown } | null)?.version;
  return typeof version === 'number' && Number.isInteger(version) && version >= 0 ? version : undefined;
}
