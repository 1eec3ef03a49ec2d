/**
 * The after-call SMS survey as a box feature (device/calls/survey.ts): its
 * table in the box store, settings.survey from box.onSettings, sending
 * through the modem's SMS service, and the claimer the SMS inbox asks
 * whether a received SMS is a survey reply. It starts before the modem, so
 * replies stored on the SIM while the box was off are recognised too; the
 * calls feature tells it when a call ends.
 */
import type { DeviceSettings } from '../../shared/contract/settings.js';
import type { Box, BoxModule } from '../box.js';
import type { CallOutcome, CallRecord } from '../calls/store.js';
import { SURVEY_MIGRATIONS, SurveySender } from '../calls/survey.js';
import type { ModemFeature } from './modem.js';
import type { SmsClaimer } from './sms-inbox.js';

const HOUR_MS = 3_600_000;

export class SurveyFeature implements BoxModule {
  readonly name = 'survey';
  readonly migrations = SURVEY_MIGRATIONS;
  sender: SurveySender | undefined;
  private off: (() => void) | undefined;
  private prune: NodeJS.Timeout | undefined;

  constructor(private readonly modem: ModemFeature) {
    const claimer: SmsClaimer = {
      match: async (from, text) => (this.sender ? this.sender.matchReply(from, text) : null),
      recorded: async (body) => this.sender?.replied(body),
    };
    modem.smsClaimer = claimer;
  }

  async start(box: Box): Promise<void> {
    let current: DeviceSettings['survey'] = box.settings.survey;
    const sender = new SurveySender({
      db: box.store,
      sink: box.events,
      modem: () => this.modem.modem,
      settings: () => current,
    });
    this.off = await box.onSettings({
      name: 'survey',
      apply: (next) => {
        current = next.survey;
      },
    });
    await sender.start();
    this.sender = sender;
    this.prune = setInterval(
      () => void sender.prune(Date.now() - current.windowH * HOUR_MS).catch(() => undefined),
      HOUR_MS,
    );
    this.prune.unref();
  }

  /** A call ended (from the calls feature). */
  callEnded(call: Pick<CallRecord, 'callId' | 'number' | 'withheld'>, outcome: CallOutcome): void {
    this.sender?.callEnded(call, outcome);
  }

  async stop(): Promise<void> {
    clearInterval(this.prune);
    this.off?.();
    await this.sender?.stop();
  }
}
