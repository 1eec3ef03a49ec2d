/**
 * Vendor profiles: the quirks of the modems a call box ships with, chosen
 * from AT+CGMI/AT+CGMM (config `profile` overrides). Each profile adds
 * initialisation commands and says how to hang up and how USSD is coded.
 */
import type { TtsCommand } from './at/tts.js';

export type ProfileName = 'generic' | 'sim7600' | 'sim800' | 'ec25' | 'huawei';

export interface VendorProfile {
  name: ProfileName;
  /** Sent after the common start-up commands; failures are logged, not fatal. */
  init: readonly string[];
  /** How to end the current call(s). */
  hangUp: readonly string[];
  /** The modem pushes call state (+CLCC or +QIND "ccinfo"), so polling can be slower. */
  pushesCallState: boolean;
  /** USSD strings are 7-bit packed hex (Huawei). */
  ussdPacked: boolean;
  /**
   * The modem's own text-to-speech (at/tts.ts): the command, and what is sent once before the first
   * greeting of a run (the play path); null: the modem has none, a tts greeting plays nothing.
   */
  tts: { command: TtsCommand; setup: readonly string[] } | null;
}

export const PROFILES: Readonly<Record<ProfileName, VendorProfile>> = {
  /** Plain 3GPP TS 27.007: AT+CHUP, falling back to ATH on modems without it. */
  generic: {
    name: 'generic',
    init: [],
    hangUp: ['AT+CHUP', 'ATH'],
    pushesCallState: false,
    ussdPacked: false,
    tts: null,
  },
  /**
   * SIMCom SIM7600: AT+CVHU=0 so that ATH really ends voice calls, AT+CLCC=1
   * pushes call state, audio over the USB PCM port (AT+CPCMREG is set up by
   * device/audio when it records). It reports ends as "VOICE CALL: END" and
   * unanswered calls as "MISSED_CALL". TTS: AT+CTTS, played to the caller after AT+CDTAM=1.
   */
  sim7600: {
    name: 'sim7600',
    init: ['AT+CVHU=0', 'AT+CLCC=1'],
    hangUp: ['AT+CHUP', 'ATH'],
    pushesCallState: true,
    ussdPacked: false,
    tts: { command: 'AT+CTTS', setup: ['AT+CDTAM=1'] },
  },
  /**
   * SIMCom SIM800: ATH is the reliable hang-up; AT+CHUP is accepted on recent firmware only.
   * TTS: AT+CTTS on the TTS firmware builds (plays into the call; no play-path command).
   */
  sim800: {
    name: 'sim800',
    init: ['AT+CVHU=0'],
    hangUp: ['ATH', 'AT+CHUP'],
    pushesCallState: false,
    ussdPacked: false,
    tts: { command: 'AT+CTTS', setup: [] },
  },
  /**
   * Quectel EC25: +QIND: "ccinfo" pushes call state after AT+QINDCFG="ccinfo",1;
   * URCs are sent to the USB AT port with AT+QURCCFG. TTS: AT+QTTS (plays into the call).
   */
  ec25: {
    name: 'ec25',
    init: ['AT+QURCCFG="urcport","usbat"', 'AT+QINDCFG="ccinfo",1,0'],
    hangUp: ['AT+CHUP', 'ATH'],
    pushesCallState: true,
    ussdPacked: false,
    tts: { command: 'AT+QTTS', setup: [] },
  },
  /**
   * Huawei E-series: ^RSSI, ^MODE, ^BOOT and friends arrive at any time, inside
   * other replies too; ^CEND reports call ends; USSD is 7-bit packed hex.
   */
  huawei: {
    name: 'huawei',
    init: [],
    hangUp: ['AT+CHUP', 'ATH'],
    pushesCallState: false,
    ussdPacked: true,
    tts: null,
  },
};

/** The profile for a manufacturer/model pair (AT+CGMI, AT+CGMM). */
export function detectProfile(manufacturer: string | null, model: string | null): ProfileName {
  const m = `${manufacturer ?? ''} ${model ?? ''}`.toUpperCase();
  if (/SIM7[56]\d\d|SIMCOM_SIM7/.test(m)) return 'sim7600';
  if (/SIM8\d\d/.test(m)) return 'sim800';
  if (/QUECTEL|EC2[015]|EG25|EC200/.test(m)) return 'ec25';
  if (/HUAWEI|^ ?E\d{3,4}/.test(m)) return 'huawei';
  return 'generic';
}
