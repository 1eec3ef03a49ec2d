/**
 * Calls as a box feature: the CallManager on the modem, its records in the
 * box's store (CALLS_MIGRATIONS), call.* and forwarding.state events through
 * box.events, settings from box.onSettings (opening hours checked before
 * they are accepted; a rollover change re-registers network forwarding),
 * the 'forwarding.set' / 'forwarding.query' commands, and calls answered
 * for voicemail handed to the voicemail feature's recorder.
 */

import { checkHours } from '../../shared/clinic-hours.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Box, BoxModule } from '../box.js';
import { CallManager, type CallsSnapshot } from '../calls/manager.js';
import { CALLS_MIGRATIONS, SqliteCallStore } from '../calls/store.js';
import type { ModemFeature } from './modem.js';
import type { SurveyFeature } from './survey.js';
import type { VoicemailFeature } from './voicemail.js';

export class CallsFeature implements BoxModule {
  readonly name = 'calls';
  readonly migrations = CALLS_MIGRATIONS;
  private managerRef: CallManager | undefined;
  private readonly listeners: ((s: CallsSnapshot) => void)[] = [];
  /** What start() registered on the box (settings listener, commands), removed by stop(). */
  private readonly detach: (() => void)[] = [];

  constructor(
    private readonly modem: ModemFeature,
    private readonly voicemail: VoicemailFeature | null,
    private readonly survey: SurveyFeature | null = null,
  ) {}

  get manager(): CallManager {
    if (!this.managerRef) throw new CallboxError(ErrorCode.Internal, 'calls feature used before start');
    return this.managerRef;
  }

  /** Follow the calls (indicators); called with every snapshot. Returns the removal. */
  onChange(fn: (s: CallsSnapshot) => void): () => void {
    this.listeners.push(fn);
    if (this.managerRef) fn(this.managerRef.snapshot());
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  async start(box: Box): Promise<void> {
    let current: DeviceSettings = box.settings;
    const manager = new CallManager({
      modem: this.modem.modem,
      sink: box.events,
      settings: () => current,
      store: new SqliteCallStore(box.store),
      onVoicemail: (call) => this.voicemail?.record(call),
      onEnded: (call, outcome) => this.survey?.callEnded(call, outcome),
      ...(this.voicemail
        ? { voicemailResult: (callId: string) => (this.voicemail as VoicemailFeature).result(callId) }
        : {}),
    });
    this.managerRef = manager;
    this.voicemail?.attachHangUp(() => manager.hangUp());
    manager.on('change', (s) => {
      this.voicemail?.callsChanged(s);
      for (const fn of this.listeners) fn(s);
    });
    const offSettings = await box.onSettings({
      name: 'calls',
      check: (next) => {
        const problems = checkHours(next.hours);
        if (problems.length > 0) {
          throw new CallboxError(
            ErrorCode.ValidationFailed,
            `opening hours are invalid: ${problems.map((p) => `${p.path}: got ${p.value}, expected ${p.expected}`).join('; ')}`,
            { problems },
          );
        }
      },
      apply: (next) => {
        current = next;
        manager.applySettings();
      },
    });
    this.detach.push(
      offSettings,
      box.handle('forwarding.set', (p) => manager.setForwarding(p)),
      box.handle('forwarding.query', () => manager.queryForwarding()),
    );
    await manager.start();
    for (const fn of this.listeners) fn(manager.snapshot());
  }

  async stop(): Promise<void> {
    for (const off of this.detach.splice(0)) off();
    await this.managerRef?.stop();
  }
}
