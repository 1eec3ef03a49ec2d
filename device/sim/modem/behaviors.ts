/**
 * The modem emulator's behaviour: a list of small handlers, tried in order
 * for each AT command; the first that returns a Reply answers it. These are
 * the defaults (a 3GPP TS 27.007/27.005 modem with per-vendor quirks). A
 * test prepends its own to make the modem misbehave:
 *
 *   emu.prepend(never(/^AT\+CLCC$/));           // never answers AT+CLCC
 *   emu.prepend(slow(/^ATA$/, 3000));            // answers ATA after 3 s
 *   emu.prepend(fails(/^AT\+CMGS/, '+CMS ERROR: 331'));
 */

import { splitFields } from '../../modem/at/fields.js';
import { decodePdu } from '../../modem/at/pdu.js';
import type { EmuCall, ModemEmulator } from './emulator.js';

export interface Reply {
  /** Information lines, each framed as <CR><LF>line<CR><LF>. */
  lines?: string[];
  /** The final result; null sends none (a modem that never answers). Default 'OK'. */
  final?: string | null;
  /** Wait this long before replying. */
  delayMs?: number;
  /** Send "> " and hand the text up to Ctrl-Z to this function (AT+CMGS). */
  prompt?: (body: string) => Reply;
  /** Runs after the reply is written (URCs that follow a reply). */
  after?: () => void;
}

export interface EmulatorBehavior {
  name: string;
  /** A reply for `cmd` (as received, without CR), or undefined to let the next behaviour try. */
  onCommand(cmd: string, emu: ModemEmulator): Reply | undefined;
}

/** A behaviour that swallows matching commands without any answer. */
export function never(pattern: RegExp): EmulatorBehavior {
  return { name: `never ${pattern}`, onCommand: (c) => (pattern.test(c) ? { final: null } : undefined) };
}

/** A behaviour that delays matching commands, then lets the defaults answer. */
export function slow(pattern: RegExp, delayMs: number): EmulatorBehavior {
  const b: EmulatorBehavior = {
    name: `slow ${pattern}`,
    onCommand: (c, emu) => {
      if (!pattern.test(c)) return undefined;
      const r = emu.answerAfter(c, b);
      return { ...r, delayMs: (r.delayMs ?? 0) + delayMs };
    },
  };
  return b;
}

/** A behaviour that answers matching commands with a given final result ('ERROR', '+CME ERROR: 30'). */
export function fails(pattern: RegExp, final: string): EmulatorBehavior {
  return { name: `fails ${pattern}`, onCommand: (c) => (pattern.test(c) ? { final } : undefined) };
}

const ok: Reply = {};
/** 27.005 3.1 <stat> in text mode, by its PDU-mode number. */
const TEXT_STAT = ['REC UNREAD', 'REC READ'];
const error: Reply = { final: 'ERROR' };

function cmeError(emu: ModemEmulator, code: number, text: string): Reply {
  if (emu.settings.cmee === 0) return error;
  return { final: emu.settings.cmee === 1 ? `+CME ERROR: ${code}` : `+CME ERROR: ${text}` };
}

function cmsError(code: number): Reply {
  return { final: `+CMS ERROR: ${code}` };
}

/** Handler for commands matching `re`; the match is passed along. */
function on(name: string, re: RegExp, fn: (m: RegExpExecArray, emu: ModemEmulator) => Reply): EmulatorBehavior {
  return {
    name,
    onCommand: (c, emu) => {
      const m = re.exec(c);
      return m ? fn(m, emu) : undefined;
    },
  };
}

const IDENTITY: Record<string, { cgmi: string; cgmm: string; cgmr: string }> = {
  generic: { cgmi: 'Callbox', cgmm: 'Virtual GSM', cgmr: 'Revision: 1.0' },
  sim7600: { cgmi: 'SIMCOM INCORPORATED', cgmm: 'SIMCOM_SIM7600E-H', cgmr: '+CGMR: LE20B04SIM7600M22' },
  sim800: { cgmi: 'SIMCOM_Ltd', cgmm: 'SIMCOM_SIM800L', cgmr: 'Revision:1418B04SIM800L24' },
  ec25: { cgmi: 'Quectel', cgmm: 'EC25', cgmr: 'Revision: EC25EFAR06A06M4G' },
  huawei: { cgmi: 'huawei', cgmm: 'E3531', cgmr: '22.521.23.00.00' },
};

const REASONS = [0, 1, 2, 3];

function clccLine(c: EmuCall, prefix = '+CLCC: '): string {
  const stat = ['active', 'held', 'dialing', 'alerting', 'incoming', 'waiting'].indexOf(c.stat);
  const dir = c.direction === 'mo' ? 0 : 1;
  const num = c.number === null ? ',""' + ',128' : `,"${c.number}",${c.number.startsWith('+') ? 145 : 129}`;
  return `${prefix}${c.index},${dir},${stat},0,0${num}`;
}

export { clccLine };

/** The defaults, in order. */
export function defaultBehaviors(): EmulatorBehavior[] {
  return [
    on('AT', /^AT$/i, () => ok),
    on('ATZ', /^ATZ$/i, (_m, emu) => {
      emu.resetSettings();
      return ok;
    }),
    on('ATE', /^ATE([01])$/i, (m, emu) => {
      emu.settings.echo = m[1] === '1';
      return ok;
    }),
    on('CMEE', /^AT\+CMEE=([012])$/i, (m, emu) => {
      emu.settings.cmee = Number(m[1]) as 0 | 1 | 2;
      return ok;
    }),
    on('CLIP', /^AT\+CLIP=([01])$/i, (m, emu) => {
      emu.settings.clip = m[1] === '1';
      return ok;
    }),
    on('CRC', /^AT\+CRC=([01])$/i, (m, emu) => {
      emu.settings.crc = m[1] === '1';
      return ok;
    }),
    on('CREG=', /^AT\+CREG=([012])$/i, (m, emu) => {
      emu.settings.creg = Number(m[1]) as 0 | 1 | 2;
      return ok;
    }),
    on('CREG?', /^AT\+CREG\?$/i, (_m, emu) => {
      const n = emu.settings.creg;
      const loc = n === 2 && emu.net.stat !== 0 ? `,"${emu.net.lac}","${emu.net.cellId}"` : '';
      return { lines: [`+CREG: ${n},${emu.net.stat}${loc}`] };
    }),
    on('CSQ', /^AT\+CSQ$/i, (_m, emu) => ({ lines: [`+CSQ: ${emu.net.csq},99`] })),
    on('COPS=3', /^AT\+COPS=3,([012])$/i, (m, emu) => {
      emu.settings.copsFormat = Number(m[1]) as 0 | 1 | 2;
      return ok;
    }),
    on('COPS?', /^AT\+COPS\?$/i, (_m, emu) => {
      if (emu.net.stat !== 1 && emu.net.stat !== 5) return { lines: ['+COPS: 0'] };
      const f = emu.settings.copsFormat;
      const oper = f === 2 ? emu.net.plmn.replace('-', '') : f === 1 ? emu.net.operator.slice(0, 8) : emu.net.operator;
      return { lines: [`+COPS: 0,${f},"${oper}",7`] };
    }),
    on('identity', /^AT\+(CGMI|CGMM|CGMR)$/i, (m, emu) => {
      const id = IDENTITY[emu.vendor] ?? (IDENTITY.generic as { cgmi: string; cgmm: string; cgmr: string });
      const k = (m[1] as string).toLowerCase() as 'cgmi' | 'cgmm' | 'cgmr';
      return { lines: [id[k]] };
    }),
    on('CGSN', /^AT\+CGSN$/i, (_m, emu) => ({ lines: [emu.imei] })),
    on('CIMI', /^AT\+CIMI$/i, (_m, emu) =>
      emu.sim.state === 'ready' ? { lines: [emu.imsi] } : cmeError(emu, 10, 'SIM not inserted'),
    ),
    on('CPIN?', /^AT\+CPIN\?$/i, (_m, emu) => {
      if (emu.sim.state === 'missing') return cmeError(emu, 10, 'SIM not inserted');
      return { lines: [emu.sim.state === 'pin' ? '+CPIN: SIM PIN' : '+CPIN: READY'] };
    }),
    on('CPIN=', /^AT\+CPIN="?(\d+)"?$/i, (m, emu) => {
      if (emu.sim.state !== 'pin') return cmeError(emu, 3, 'operation not allowed');
      if (m[1] !== emu.sim.pin) return cmeError(emu, 16, 'incorrect password');
      emu.sim.state = 'ready';
      return { after: () => emu.urc('+CPIN: READY') };
    }),
    on('CNMI', /^AT\+CNMI=(\d)(?:,(\d))?/i, (m, emu) => {
      emu.settings.cnmiMt = Number(m[2] ?? 0);
      return ok;
    }),
    on('CMGF', /^AT\+CMGF=([01])$/i, (m, emu) => {
      emu.settings.cmgf = Number(m[1]) as 0 | 1;
      return ok;
    }),
    on('CVHU', /^AT\+CVHU=([01])$/i, (m, emu) => {
      if (emu.vendor !== 'sim7600' && emu.vendor !== 'sim800') return error;
      emu.settings.cvhu = Number(m[1]) as 0 | 1;
      return ok;
    }),
    on('CLCC=', /^AT\+CLCC=([01])$/i, (m, emu) => {
      if (emu.vendor !== 'sim7600') return error;
      emu.settings.clccPush = m[1] === '1';
      return ok;
    }),
    on('QINDCFG', /^AT\+QINDCFG="ccinfo",([01])/i, (m, emu) => {
      if (emu.vendor !== 'ec25') return error;
      emu.settings.qindCcinfo = m[1] === '1';
      return ok;
    }),
    on('QURCCFG', /^AT\+QURCCFG=/i, (_m, emu) => (emu.vendor === 'ec25' ? ok : error)),
    on('CLCC', /^AT\+CLCC$/i, (_m, emu) => ({ lines: emu.calls.map((c) => clccLine(c)) })),
    on('ATA', /^ATA$/i, (_m, emu) => {
      const c = emu.calls.find((x) => x.stat === 'incoming');
      if (!c) return { final: 'NO CARRIER' };
      return { after: () => emu.setCallStat(c, 'active') };
    }),
    on('CHUP', /^AT\+CHUP$/i, (_m, emu) => {
      if (emu.vendor === 'sim800') return error;
      return { after: () => emu.endCalls((c) => c.stat !== 'waiting' && c.stat !== 'held', 'local') };
    }),
    on('ATH', /^ATH0?$/i, (_m, emu) => {
      // SIMCom with AT+CVHU=1 (their default): ATH does not end a voice call.
      if ((emu.vendor === 'sim7600' || emu.vendor === 'sim800') && emu.settings.cvhu === 1) return ok;
      return { after: () => emu.endCalls((c) => c.stat !== 'waiting' && c.stat !== 'held', 'local') };
    }),
    on('CTFR', /^AT\+CTFR="?([^",]+)"?(?:,(\d+))?$/i, (m, emu) => {
      const c = emu.calls.find((x) => x.stat === 'incoming' || x.stat === 'waiting');
      if (!c) return cmeError(emu, 3, 'operation not allowed');
      emu.deflections.push({ number: c.number, to: m[1] as string });
      return { after: () => emu.endCalls((x) => x === c, 'local') };
    }),
    on('CHLD', /^AT\+CHLD=(\d+)$/i, (m, emu) => {
      const n = m[1] as string;
      const active = emu.calls.filter((c) => c.stat === 'active');
      const other = emu.calls.find((c) => c.stat === 'waiting' || c.stat === 'held');
      if (n === '0') return { after: () => emu.endCalls((c) => c.stat === 'waiting' || c.stat === 'held', 'local') };
      if (n === '1')
        return {
          after: () => {
            emu.endCalls((c) => active.includes(c), 'local');
            if (other) emu.setCallStat(other, 'active');
          },
        };
      if (n === '2')
        return {
          after: () => {
            for (const c of active) emu.setCallStat(c, 'held');
            if (other) emu.setCallStat(other, 'active');
          },
        };
      if (n.startsWith('1')) {
        const idx = Number(n.slice(1));
        if (!emu.calls.some((c) => c.index === idx)) return cmeError(emu, 22, 'not found');
        return { after: () => emu.endCalls((c) => c.index === idx, 'local') };
      }
      return cmeError(emu, 4, 'operation not supported');
    }),
    on('CCFC', /^AT\+CCFC=(.*)$/i, (m, emu) => {
      const f = splitFields(m[1] as string).map((x) => x.value);
      const reason = Number(f[0]);
      const mode = Number(f[1]);
      if (!Number.isInteger(reason) || reason < 0 || reason > 5 || !Number.isInteger(mode) || mode < 0 || mode > 4) {
        return cmeError(emu, 4, 'operation not supported');
      }
      const targets = reason === 4 ? REASONS : reason === 5 ? [1, 2, 3] : [reason];
      if (mode === 2) {
        const st = emu.forwarding.get(reason);
        if (!st?.enabled || !st.number) return { lines: ['+CCFC: 0,7'] };
        const t = st.number.startsWith('+') ? 145 : 129;
        return {
          lines: [`+CCFC: 1,${st.classx},"${st.number}",${t}${reason === 2 && st.time ? `,,,${st.time}` : ''}`],
        };
      }
      const number = f[2] || undefined;
      const time = f[7] ? Number(f[7]) : reason === 2 || reason >= 4 ? 20 : null;
      for (const r of targets) {
        const prev = emu.forwarding.get(r);
        if (mode === 3) {
          if (!number) return cmeError(emu, 3, 'operation not allowed');
          emu.forwarding.set(r, { enabled: true, number, classx: Number(f[4] || 1), time: r === 2 ? time : null });
        } else if (mode === 4) emu.forwarding.delete(r);
        else if (mode === 1) {
          if (!prev?.number) return cmeError(emu, 3, 'operation not allowed');
          prev.enabled = true;
        } else if (mode === 0 && prev) prev.enabled = false;
      }
      return ok;
    }),
    on('CMGS text', /^AT\+CMGS="([^"]+)"/i, (m, emu) => {
      if (emu.settings.cmgf !== 1) return cmsError(304);
      const to = m[1] as string;
      return {
        final: null,
        prompt: (body) => {
          emu.recordSent(to, body, 1);
          return { lines: [`+CMGS: ${emu.nextMr()}`] };
        },
      };
    }),
    on('CMGS pdu', /^AT\+CMGS=(\d+)$/i, (_m, emu) => {
      if (emu.settings.cmgf !== 0) return cmsError(305);
      return {
        final: null,
        prompt: (body) => {
          let d: ReturnType<typeof decodePdu>;
          try {
            d = decodePdu(body.trim());
          } catch {
            return cmsError(304);
          }
          emu.recordSentPart(d.address, d.text, d.concat);
          return { lines: [`+CMGS: ${emu.nextMr()}`] };
        },
      };
    }),
    // 27.005 3.4.3 / 4.4: reading a message marks it read.
    on('CMGR', /^AT\+CMGR=(\d+)$/i, (m, emu) => {
      const sms = emu.smsStore.get(Number(m[1]));
      if (!sms) return cmsError(321);
      const stat = sms.stat;
      sms.stat = 1;
      sms.reads++;
      if (emu.settings.cmgf === 0) return { lines: [`+CMGR: ${stat},,${(sms.pdu.length - 2) / 2}`, sms.pdu] };
      return { lines: [`+CMGR: "${TEXT_STAT[stat]}","${sms.from}",,"${sms.scts}"`, sms.text] };
    }),
    // 27.005 4.1 (PDU: <stat> 0..4) and 3.4.2 (text: "REC UNREAD", "REC READ", "ALL"...); listed unread become read.
    on('CMGL', /^AT\+CMGL(?:=(.*))?$/i, (m, emu) => {
      const arg = (m[1] ?? '').trim();
      let want: number;
      if (emu.settings.cmgf === 0) {
        want = arg === '' ? 0 : Number(arg);
        if (!/^[0-4]?$/.test(arg)) return cmsError(302);
      } else {
        const t = arg === '' ? 'REC UNREAD' : arg.replace(/"/g, '').toUpperCase();
        want = t === 'ALL' ? 4 : TEXT_STAT.indexOf(t);
        if (want < 0) return cmsError(302);
      }
      const lines: string[] = [];
      for (const [i, sms] of [...emu.smsStore].sort((a, b) => a[0] - b[0])) {
        if (want !== 4 && sms.stat !== want) continue;
        if (emu.settings.cmgf === 0) lines.push(`+CMGL: ${i},${sms.stat},,${(sms.pdu.length - 2) / 2}`, sms.pdu);
        else lines.push(`+CMGL: ${i},"${TEXT_STAT[sms.stat]}","${sms.from}",,"${sms.scts}"`, sms.text);
        sms.stat = 1;
        sms.reads++;
      }
      return { lines };
    }),
    // 27.005 3.5.4: <delflag> 0 this index, 1 all read, 2-3 read and stored (none here), 4 all.
    on('CMGD', /^AT\+CMGD=(\d+)(?:,([0-4]))?$/i, (m, emu) => {
      const index = Number(m[1]);
      const flag = Number(m[2] ?? 0);
      if (flag === 0) emu.deleteStoredSms((i) => i === index);
      else if (flag === 4) emu.deleteStoredSms(() => true);
      else emu.deleteStoredSms((_i, sms) => sms.stat === 1);
      return ok;
    }),
    on('CUSD', /^AT\+CUSD=1,"([^"]*)"(?:,(\d+))?$/i, (m, emu) => {
      let code = m[1] as string;
      if (emu.vendor === 'huawei') code = emu.unpackUssd(code);
      const answer = emu.ussdAnswers.get(code);
      return {
        after: () =>
          setTimeout(() => {
            if (answer === undefined) emu.urc('+CUSD: 4');
            else emu.urc(`+CUSD: 0,"${emu.vendor === 'huawei' ? emu.packUssd(answer) : answer}",15`);
          }, 30),
      };
    }),
    // SIMCom TTS (AT+CDTAM play path, AT+CTTS) and Quectel TTS (AT+QTTS): device/modem/at/tts.ts.
    on('CDTAM', /^AT\+CDTAM=([01])$/i, (m, emu) => {
      if (emu.vendor !== 'sim7600') return error;
      emu.settings.cdtam = Number(m[1]) as 0 | 1;
      return ok;
    }),
    on('CTTS/QTTS', /^AT\+(CTTS|QTTS)=(\d)(?:,"([^"]*)")?$/i, (m, emu) => {
      const command = `AT+${(m[1] as string).toUpperCase()}` as 'AT+CTTS' | 'AT+QTTS';
      const simcom = emu.vendor === 'sim7600' || emu.vendor === 'sim800';
      if (command === 'AT+CTTS' ? !simcom : emu.vendor !== 'ec25') return error;
      const mode = Number(m[2]);
      if (mode === 0) return emu.stopSpeaking() ? { lines: [`+${command.slice(3)}: 0`] } : ok;
      if (mode !== 2 || m[3] === undefined || m[3] === '') return cmeError(emu, 4, 'operation not supported');
      const text = m[3];
      return { after: () => emu.startSpeaking(command, text) };
    }),
    // 27.007 C.11: a DTMF tone to the remote party, only in a call.
    on('VTS', /^AT\+VTS=([0-9A-D*#])(?:,(\d+))?$/i, (m, emu) => {
      if (!emu.calls.some((c) => c.stat === 'active')) return cmeError(emu, 3, 'operation not allowed');
      emu.tones.push({ dtmf: m[1] as string, durationMs: m[2] === undefined ? null : Number(m[2]) * 100 });
      return ok;
    }),
    on('CFUN', /^AT\+CFUN=/i, () => ok),
    on('CSCS', /^AT\+CSCS=/i, () => ok),
    { name: 'unknown', onCommand: () => error },
  ];
}
