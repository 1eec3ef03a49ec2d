/**
 * The modems' own text-to-speech (vendor commands; 3GPP has none).
 *
 * SIMCom (SIM7500/SIM7600 "TTS" commands; SIM800 TTS firmware):
 *   AT+CDTAM=1             play TTS to the remote party (SIM7600; 0 is the local speaker, the default)
 *   AT+CTTS=2,"<text>"     synthesise ASCII text and play it: OK at once, then URC "+CTTS: 0" when it is done
 *   AT+CTTS=0              stop playing (answers "+CTTS: 0" and OK while something plays, else OK)
 * Quectel (EC2x/EG25 TTS, firmware with TTS enabled):
 *   AT+QTTS=2,"<text>"     the same form; URC "+QTTS: 0" when done
 *   AT+QTTS=0              stop
 * Assumptions (from the vendor manuals as far as they could be checked):
 * mode 2 takes ASCII (GBK for Chinese) text in double quotes with no way to
 * escape a quote, so a quote is refused before the command is built; the
 * URC's number is 0 when playback finished and another value (1: stopped or
 * failed on some firmware) otherwise, and either way playback is over;
 * Quectel plays TTS to the far end during a call without a set-up command.
 */

export type TtsCommand = 'AT+CTTS' | 'AT+QTTS';

/** The longest text sent (SIMCom documents no limit below 512 bytes; both take at least this much). */
export const TTS_MAX_CHARS = 500;

/** AT+CTTS=2,"text" / AT+QTTS=2,"text"; RangeError for text the modem cannot take. */
export function formatTtsPlay(command: TtsCommand, text: string): string {
  if (text.length === 0) throw new RangeError('TTS text is empty');
  if (text.length > TTS_MAX_CHARS)
    throw new RangeError(`TTS text is ${text.length} characters, at most ${TTS_MAX_CHARS}`);
  if (!/^[\x20\x21\x23-\x7e]+$/.test(text)) {
    throw new RangeError('TTS text must be printable ASCII without a double quote (mode 2 has no escape)');
  }
  return `${command}=2,"${text}"`;
}

export function formatTtsStop(command: TtsCommand): string {
  return `${command}=0`;
}

/** The URC prefix of a TTS command ("+CTTS:" for AT+CTTS). */
export function ttsUrcPrefix(command: TtsCommand): string {
  return `+${command.slice(3)}:`;
}

/** "+CTTS: 0" / "+QTTS: 0" -> the status number (0: done); null when the line is not one. */
export function parseTtsUrc(line: string): { vendor: 'CTTS' | 'QTTS'; status: number } | null {
  const m = /^\+(CTTS|QTTS):\s*(\d+)\s*$/.exec(line);
  return m ? { vendor: m[1] as 'CTTS' | 'QTTS', status: Number(m[2]) } : null;
}
