/**
 * A tone into the call: AT+VTS (3GPP TS 27.007 C.11, from V.250/TIA IS-101:
 * "DTMF and tone generation", which names "announcing the start of a
 * recording period" as a use). The form every profile takes is
 * AT+VTS=<dtmf>,<duration> with the duration in tenths of a second (SIMCom,
 * Quectel, Huawei); the network plays the tone to the caller.
 */

export function formatVts(dtmf: string, durationMs: number): string {
  if (!/^[0-9A-D*#]$/.test(dtmf)) throw new RangeError(`tone "${dtmf}" is not one DTMF character (0-9, A-D, *, #)`);
  const tenths = Math.round(durationMs / 100);
  if (tenths < 1 || tenths > 255) throw new RangeError(`tone duration ${durationMs} ms is outside 100 to 25500 ms`);
  return `AT+VTS=${dtmf},${tenths}`;
}
