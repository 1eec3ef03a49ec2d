/**
 * The box's feature modules, wired to the real pieces (device/main.ts plugs
 * them in with box.use()):
 *
 *   survey     after-call SMS survey: settings.survey, its table; claims replies 1-5 among received SMS
 *   modem      createModem(config.modem): telemetry, 'modem.state', 'sms.received', command 'sms.send'
 *   voicemail  greeting (modem TTS or aplay), vault under <dataDir>/voicemail, recorder (alsa-capture,
 *              optional; ends on hang-up, maximum or silence), uploader on connect, unheard list and
 *              'voicemail.heard'
 *   calls      CallManager: call.* / forwarding.state events, settings, 'forwarding.set' / 'forwarding.query'
 *   io         IoService: link, line, call and voicemail indicators; panic flow; handset answers/hangs up;
 *              'panic.ack' / 'indicators.test'
 *
 * They start in that order (the survey before the modem, so that replies stored on the SIM are
 * recognised; calls need the modem; io follows calls) and stop
 * in reverse. The seams (modem byte stream, board, HID backend, audio
 * capture) are options for the demo and tests.
 */
import type { BoxModule } from '../box.js';
import type { DeviceConfig } from '../config.js';
import type { ModemOptions } from '../modem/driver.js';
import { CallsFeature } from './calls.js';
import { IoFeature, type IoFeatureOptions } from './io.js';
import { ModemFeature } from './modem.js';
import { SurveyFeature } from './survey.js';
import { VoicemailFeature, type VoicemailFeatureOptions } from './voicemail.js';

export { CallsFeature } from './calls.js';
export { IoFeature } from './io.js';
export { ModemFeature } from './modem.js';
export { SurveyFeature } from './survey.js';
export { VoicemailFeature } from './voicemail.js';

export interface FeatureOptions {
  modem?: ModemOptions;
  io?: IoFeatureOptions;
  voicemail?: VoicemailFeatureOptions;
}

export interface Features {
  modem: ModemFeature;
  voicemail: VoicemailFeature;
  calls: CallsFeature;
  io: IoFeature;
  survey: SurveyFeature;
  /** In start order. */
  modules: BoxModule[];
}

export function createFeatures(config: DeviceConfig, opts: FeatureOptions = {}): Features {
  const modem = new ModemFeature(config.modem, opts.modem);
  const voicemail = new VoicemailFeature(opts.voicemail, () => modem.modem);
  const survey = new SurveyFeature(modem);
  const calls = new CallsFeature(modem, voicemail, survey);
  const io = new IoFeature(modem, calls, opts.io, voicemail);
  return { modem, voicemail, calls, io, survey, modules: [survey, modem, voicemail, calls, io] };
}

/** Every feature module for a box with this configuration, in start order. */
export function defaultModules(config: DeviceConfig, opts: FeatureOptions = {}): BoxModule[] {
  return createFeatures(config, opts).modules;
}
