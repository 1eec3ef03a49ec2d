/**
 * Trailing-silence detection on 16-bit little-endian mono PCM as it arrives
 * from the capture: the loudness of each 20 ms frame is its RMS in dBFS
 * (20·log10(rms / 32768): 0 dBFS is full scale, digital silence is -inf).
 * A frame below the threshold is silent; the recording may end once the
 * silent frames at its end add up to `endAfterMs`. A message with no frame
 * at or above the threshold is empty (kept, but marked so).
 *
 * Pure and incremental: chunks of any size (odd byte counts too) are cut
 * into whole frames; the remainder waits for the next chunk.
 */

/** Frame length for the energy measure (a common speech analysis frame). */
export const FRAME_MS = 20;

export interface SilenceOptions {
  rate: number;
  /** A frame below this RMS level (dBFS) is silent. */
  thresholdDbfs: number;
  /** Trailing silence that ends the recording (ms); 0: never. */
  endAfterMs: number;
}

/** RMS level of 16-bit LE samples in dBFS (-Infinity for digital silence). */
export function rmsDbfs(pcm: Buffer, from = 0, to = pcm.length): number {
  const n = Math.floor((to - from) / 2);
  if (n <= 0) return Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const s = pcm.readInt16LE(from + i * 2);
    sum += s * s;
  }
  const rms = Math.sqrt(sum / n);
  return rms === 0 ? Number.NEGATIVE_INFINITY : 20 * Math.log10(rms / 32768);
}

export class SilenceDetector {
  private readonly frameBytes: number;
  private readonly frameMs: number;
  private pending: Buffer = Buffer.alloc(0);
  private trailingMs = 0;
  /** Whether any frame so far was at or above the threshold. */
  voiced = false;

  constructor(private readonly opts: SilenceOptions) {
    if (!(opts.rate > 0)) throw new RangeError(`sample rate must be above 0, got ${opts.rate}`);
    const samples = Math.max(1, Math.round((opts.rate * FRAME_MS) / 1000));
    this.frameBytes = samples * 2;
    this.frameMs = (samples * 1000) / opts.rate;
  }

  /** Silence at the end of what was pushed so far (ms, whole frames). */
  get trailingSilenceMs(): number {
    return this.trailingMs;
  }

  /** Feed captured PCM; returns true once the trailing silence reached endAfterMs. */
  push(chunk: Buffer): boolean {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    for (; off + this.frameBytes <= data.length; off += this.frameBytes) {
      if (rmsDbfs(data, off, off + this.frameBytes) >= this.opts.thresholdDbfs) {
        this.voiced = true;
        this.trailingMs = 0;
      } else {
        this.trailingMs += this.frameMs;
      }
    }
    this.pending = Buffer.from(data.subarray(off));
    return this.ended;
  }

  get ended(): boolean {
    return this.opts.endAfterMs > 0 && this.trailingMs >= this.opts.endAfterMs;
  }
}
