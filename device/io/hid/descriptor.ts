/**
 * A HID report descriptor parser (USB HID 1.11, 6.2.2): enough to find
 * where a device puts each usage in its input and output reports, so the
 * handset code reads the hook switch and writes the ring/off-hook LEDs of
 * any telephony device without a per-model table.
 *
 * Short items only (long items are skipped); Push/Pop supported; variable
 * fields are listed per usage, array fields with their usage list.
 */

export type ReportKind = 'input' | 'output' | 'feature';

export interface HidField {
  kind: ReportKind;
  /** 0 when the device does not number its reports. */
  reportId: number;
  usagePage: number;
  usage: number;
  /** Offset in bits from the start of the report data (after the id byte). */
  bitOffset: number;
  bitSize: number;
  relative: boolean;
  logicalMin: number;
  logicalMax: number;
}

export interface HidArrayField {
  kind: ReportKind;
  reportId: number;
  usages: { usagePage: number; usage: number }[];
  bitOffset: number;
  bitSize: number;
  count: number;
  logicalMin: number;
}

export interface ParsedDescriptor {
  fields: HidField[];
  arrays: HidArrayField[];
  /** The top-level application collections: usage page and usage. */
  applications: { usagePage: number; usage: number }[];
  numbered: boolean;
  /** Length in bytes of each report's data (without the id byte), by kind and id. */
  reportBytes: Map<string, number>;
}

export const reportKey = (kind: ReportKind, reportId: number) => `${kind}:${reportId}`;

interface Globals {
  usagePage: number;
  logicalMin: number;
  logicalMax: number;
  reportSize: number;
  reportCount: number;
  reportId: number;
}

function signed(value: number, size: number): number {
  if (size === 1 && value & 0x80) return value - 0x100;
  if (size === 2 && value & 0x8000) return value - 0x10000;
  if (size === 4) return value | 0;
  return value;
}

export function parseReportDescriptor(bytes: ArrayLike<number>): ParsedDescriptor {
  const out: ParsedDescriptor = { fields: [], arrays: [], applications: [], numbered: false, reportBytes: new Map() };
  let g: Globals = { usagePage: 0, logicalMin: 0, logicalMax: 0, reportSize: 0, reportCount: 0, reportId: 0 };
  const stack: Globals[] = [];
  let usages: { usagePage: number; usage: number }[] = [];
  let usageMin: number | null = null;
  let depth = 0;
  const bits = new Map<string, number>();

  const fullUsage = (v: number, size: number) =>
    size === 4 ? { usagePage: v >>> 16, usage: v & 0xffff } : { usagePage: g.usagePage, usage: v };

  let i = 0;
  while (i < bytes.length) {
    const prefix = bytes[i]!;
    if (prefix === 0xfe) {
      i += 3 + (bytes[i + 1] ?? 0);
      continue;
    }
    const size = [0, 1, 2, 4][prefix & 3]!;
    const type = (prefix >> 2) & 3;
    const tag = prefix >> 4;
    let value = 0;
    for (let k = 0; k < size; k++) value |= (bytes[i + 1 + k] ?? 0) << (8 * k);
    value >>>= 0;
    i += 1 + size;

    if (type === 1) {
      switch (tag) {
        case 0:
          g.usagePage = value;
          break;
        case 1:
          g.logicalMin = signed(value, size);
          break;
        case 2:
          g.logicalMax = g.logicalMin < 0 ? signed(value, size) : value;
          break;
        case 7:
          g.reportSize = value;
          break;
        case 8:
          g.reportId = value;
          out.numbered = true;
          break;
        case 9:
          g.reportCount = value;
          break;
        case 10:
          stack.push({ ...g });
          break;
        case 11:
          g = stack.pop() ?? g;
          break;
      }
      continue;
    }
    if (type === 2) {
      if (tag === 0) usages.push(fullUsage(value, size));
      else if (tag === 1) usageMin = value;
      else if (tag === 2 && usageMin !== null) {
        for (let u = usageMin; u <= value && u - usageMin < 1024; u++)
          usages.push({ usagePage: g.usagePage, usage: u });
        usageMin = null;
      }
      continue;
    }
    if (type === 0) {
      if (tag === 10) {
        if (depth === 0 && value === 1 && usages[0]) out.applications.push(usages[0]);
        depth++;
      } else if (tag === 12) {
        depth = Math.max(0, depth - 1);
      } else if (tag === 8 || tag === 9 || tag === 11) {
        const kind: ReportKind = tag === 8 ? 'input' : tag === 9 ? 'output' : 'feature';
        const key = reportKey(kind, g.reportId);
        const start = bits.get(key) ?? 0;
        const constant = (value & 1) !== 0;
        const variable = (value & 2) !== 0;
        const relative = (value & 4) !== 0;
        if (!constant && usages.length > 0) {
          if (variable) {
            for (let n = 0; n < g.reportCount; n++) {
              const u = usages[Math.min(n, usages.length - 1)]!;
              out.fields.push({
                kind,
                reportId: g.reportId,
                usagePage: u.usagePage,
                usage: u.usage,
                bitOffset: start + n * g.reportSize,
                bitSize: g.reportSize,
                relative,
                logicalMin: g.logicalMin,
                logicalMax: g.logicalMax,
              });
            }
          } else {
            out.arrays.push({
              kind,
              reportId: g.reportId,
              usages: [...usages],
              bitOffset: start,
              bitSize: g.reportSize,
              count: g.reportCount,
              logicalMin: g.logicalMin,
            });
          }
        }
        const end = start + g.reportSize * g.reportCount;
        bits.set(key, end);
        out.reportBytes.set(key, Math.ceil(end / 8));
      }
      usages = [];
      usageMin = null;
    }
  }
  return out;
}

/** Read an unsigned bit field from report data. */
export function readBits(data: ArrayLike<number>, bitOffset: number, bitSize: number): number {
  let v = 0;
  for (let b = 0; b < bitSize; b++) {
    const pos = bitOffset + b;
    if (((data[pos >> 3] ?? 0) >> (pos & 7)) & 1) v |= 1 << b;
  }
  return v >>> 0;
}

export function writeBits(data: number[], bitOffset: number, bitSize: number, value: number): void {
  for (let b = 0; b < bitSize; b++) {
    const pos = bitOffset + b;
    const idx = pos >> 3;
    data[idx] = ((data[idx] ?? 0) & ~(1 << (pos & 7))) | (((value >> b) & 1) << (pos & 7));
  }
}

export const USAGE = {
  TELEPHONY_PAGE: 0x0b,
  LED_PAGE: 0x08,
  HOOK_SWITCH: 0x20,
  PHONE_MUTE: 0x2f,
  RINGER: 0x9e,
  LED_MUTE: 0x09,
  LED_OFF_HOOK: 0x17,
  LED_RING: 0x18,
} as const;
