/**
 * One error type for the whole project. Codes are grouped by area in
 * ranges of 100 so that a code alone says where a failure came from:
 *
 *   1xx configuration   2xx validation / protocol   3xx modem
 *   4xx storage         5xx MQTT link / broker      6xx fleet / registry
 *   7xx io (GPIO, HID)  8xx audio / voicemail       9xx internal
 *
 * Add codes at the end of their range; never renumber (codes appear in
 * logs, in RPC error replies and in the fleet's stored events).
 */
export enum ErrorCode {
  // 1xx configuration
  ConfigInvalid = 100,
  ConfigFileUnreadable = 101,
  ConfigParseFailed = 102,

  // 2xx validation and protocol
  ValidationFailed = 200,
  UnknownTopic = 201,
  UnknownMethod = 202,
  RequestTimeout = 203,
  RequestRejected = 204,
  PayloadTooLarge = 205,
  NotAuthorized = 206,
  /** A request reached its responder after its expiresAt: not run. */
  RequestExpired = 207,

  // 3xx modem
  ModemTimeout = 300,
  ModemCommandFailed = 301,
  ModemDisconnected = 302,
  ModemNotReady = 303,
  ModemSimProblem = 304,
  ModemQueueClosed = 305,
  ModemUnsupported = 306,

  // 4xx storage
  StoreUnavailable = 400,
  StoreCorrupt = 401,
  StoreFull = 402,
  NotFound = 403,
  Conflict = 404,

  // 5xx MQTT link and broker
  LinkDisconnected = 500,
  LinkNotProvisioned = 501,
  BrokerPortInUse = 502,
  BrokerFailed = 503,
  CredentialsRevoked = 504,

  // 6xx fleet and registry
  ClaimPending = 600,
  ClaimRejected = 601,
  DeviceDecommissioned = 602,
  AlertNotFound = 603,
  /** A command for a box the fleet knows is offline, which would expire before the box could get it: not sent. */
  DeviceOffline = 604,

  // 7xx io
  IoBoardFailed = 700,
  HidDeviceMissing = 701,

  // 8xx audio and voicemail
  AudioUnavailable = 800,
  VoicemailChecksumMismatch = 801,

  // 9xx internal
  Internal = 900,
  ShuttingDown = 901,

  // 10xx software updates
  /** A release refused before it was installed: bad signature, modified file, older version, wrong program. */
  UpdateRefused = 1000,
  /** An installed release that failed: it did not confirm its health in time, and was rolled back. */
  UpdateFailed = 1001,
}

export type ErrorArea =
  | 'config'
  | 'validation'
  | 'modem'
  | 'storage'
  | 'link'
  | 'fleet'
  | 'io'
  | 'audio'
  | 'internal'
  | 'update';

const AREAS: Record<number, ErrorArea> = {
  1: 'config',
  2: 'validation',
  3: 'modem',
  4: 'storage',
  5: 'link',
  6: 'fleet',
  7: 'io',
  8: 'audio',
  9: 'internal',
  10: 'update',
};

export function areaOf(code: ErrorCode): ErrorArea {
  return AREAS[Math.floor(code / 100)] ?? 'internal';
}

export interface ErrorDetails {
  [key: string]: unknown;
}

export class CallboxError extends Error {
  override readonly name = 'CallboxError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get area(): ErrorArea {
    return areaOf(this.code);
  }

  /** The shape sent over the wire in RPC error replies. */
  toJSON(): { code: number; name: string; message: string; details?: ErrorDetails } {
    const out: { code: number; name: string; message: string; details?: ErrorDetails } = {
      code: this.code,
      name: ErrorCode[this.code] ?? 'Unknown',
      message: this.message,
    };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

export function isCallboxError(e: unknown, code?: ErrorCode): e is CallboxError {
  return e instanceof CallboxError && (code === undefined || e.code === code);
}

function areaGuard(area: ErrorArea) {
  return (e: unknown): e is CallboxError => e instanceof CallboxError && e.area === area;
}

export const isConfigError = areaGuard('config');

/**
 * The exit code of both programs when their configuration is wrong (EX_CONFIG of sysexits.h). The systemd units
 * list it in RestartPreventExitStatus=: restarting cannot fix a bad file, so systemd stops and says so instead of
 * looping. Every other fatal error exits 1 and is restarted.
 */
export const EXIT_CONFIG = 78;
export const isValidationError = areaGuard('validation');
export const isModemError = areaGuard('modem');
export const isStorageError = areaGuard('storage');
export const isLinkError = areaGuard('link');
export const isFleetError = areaGuard('fleet');
export const isIoError = areaGuard('io');
export const isAudioError = areaGuard('audio');

/** A disconnect is a flag-style condition callers often need to branch on. */
export function isDisconnected(e: unknown): boolean {
  return isCallboxError(e, ErrorCode.ModemDisconnected) || isCallboxError(e, ErrorCode.LinkDisconnected);
}

/** Turn anything thrown into a message fit for a log line or an RPC reply. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
