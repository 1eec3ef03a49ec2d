/**
 * Keyword spotting with CMU pocketsphinx (Debian's pocketsphinx and
 * pocketsphinx-en-us, offline): sox turns the recording into 16 kHz mono
 * 16-bit PCM, pocketsphinx_continuous listens for a list of phrases, each
 * with its threshold (`-kws`), and prints each detection with its start and
 * end time and a score. This is keyword spotting, not transcription: it says
 * where a listed phrase was probably said, nothing about the other words.
 *
 * Both tools run as supervised child processes: a time limit (killed past
 * it), stderr kept for the error, and a clear AudioUnavailable error when a
 * binary or the acoustic model is missing, so the caller can mark the
 * voicemail "triage unavailable" instead of calling it routine.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { TRIAGE_DEFAULTS } from './config.js';
import type { UrgentPhrase } from './phrases.js';

export interface SpotterConfig {
  soxPath: string;
  pocketsphinxPath: string;
  /** Acoustic model folder (holds mdef, means, ...). */
  hmmDir: string;
  dictPath: string;
  /** Each tool run may take this long before it is killed. */
  timeoutMs: number;
  /** pocketsphinx -kws_plp: the phone loop's probability, the alternative a phrase is weighed against. */
  phoneLoopProbability: number;
}

export const DEFAULT_SPOTTER: SpotterConfig = {
  soxPath: TRIAGE_DEFAULTS.soxPath,
  pocketsphinxPath: TRIAGE_DEFAULTS.pocketsphinxPath,
  hmmDir: TRIAGE_DEFAULTS.hmmDir,
  dictPath: TRIAGE_DEFAULTS.dictPath,
  timeoutMs: TRIAGE_DEFAULTS.timeoutMs,
  phoneLoopProbability: TRIAGE_DEFAULTS.phoneLoopProbability,
};

export interface Detection {
  phrase: string;
  /** Seconds from the start of the recording. */
  startS: number;
  endS: number;
  /** pocketsphinx's score of the detection (0..1). */
  score: number;
}

export const SAMPLE_RATE = 16_000;

/** The model, as stored with every result. */
export function modelName(cfg: SpotterConfig): string {
  return `pocketsphinx-kws ${cfg.hmmDir.split('/').filter(Boolean).slice(-1)[0] ?? cfg.hmmDir}`;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a tool under a time limit (input on stdin); AudioUnavailable when it is not installed, naming the setting. */
function runTool(path: string, args: string[], timeoutMs: number, setting: string, input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined); // a tool that exits early closes its stdin: the exit says why
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT' || e.code === 'EACCES'
          ? new CallboxError(
              ErrorCode.AudioUnavailable,
              `${path} cannot be run (${e.code}): install it (Debian: sox, pocketsphinx, pocketsphinx-en-us) or set ${setting}`,
            )
          : new CallboxError(ErrorCode.AudioUnavailable, `${path} cannot be started: ${e.message}`),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) return resolve({ stdout, stderr });
      if (killed) {
        return reject(
          new CallboxError(ErrorCode.AudioUnavailable, `${path} took longer than ${timeoutMs} ms and was stopped`),
        );
      }
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      reject(
        new CallboxError(
          ErrorCode.AudioUnavailable,
          `${path} failed (${signal ? `signal ${signal}` : `exit ${code}`})${tail ? `: ${tail}` : ''}`,
        ),
      );
    });
    child.stdin.end(input);
  });
}

/** A recording (WAV bytes, or any file sox reads) -> 16 kHz mono signed 16-bit little-endian PCM (raw file). */
export async function toPcm16k(input: Buffer | string, output: string, cfg: SpotterConfig): Promise<Buffer> {
  const from = typeof input === 'string' ? [input] : ['-t', 'wav', '-'];
  await runTool(
    cfg.soxPath,
    ['-V1', ...from, '-t', 'raw', '-r', String(SAMPLE_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', output],
    cfg.timeoutMs,
    'triage.soxPath',
    typeof input === 'string' ? undefined : input,
  );
  return readFile(output);
}

/** The model files are there (pocketsphinx itself says little when they are not). */
function checkModel(cfg: SpotterConfig): void {
  const missing = [join(cfg.hmmDir, 'mdef'), cfg.dictPath].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new CallboxError(
      ErrorCode.AudioUnavailable,
      `the keyword-spotting model is missing (${missing.join(', ')}): install pocketsphinx-en-us or set triage.hmmDir / triage.dictPath`,
    );
  }
}

/** pocketsphinx's `-kws` file: one "phrase /threshold/" a line. */
export function kwsFile(phrases: readonly UrgentPhrase[]): string {
  return `${phrases.map((p) => `${p.phrase} /${p.threshold.toExponential()}/`).join('\n')}\n`;
}

/** Detection lines of `-time yes` output: "<phrase> <start> <end> <score>" (other lines are the hypothesis). */
export function parseDetections(stdout: string, phrases: readonly UrgentPhrase[]): Detection[] {
  const known = new Set(phrases.map((p) => p.phrase));
  const out: Detection[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(.+?)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/.exec(line.trim());
    if (!m) continue;
    const phrase = (m[1] ?? '').trim().replace(/\s+/g, ' ');
    if (!known.has(phrase)) continue;
    out.push({ phrase, startS: Number(m[2]), endS: Number(m[3]), score: Number(m[4]) });
  }
  return out.sort((a, b) => a.startS - b.startS);
}

/** Spot the phrases in a 16 kHz mono raw PCM file. */
export async function spotPhrases(
  rawPath: string,
  phrases: readonly UrgentPhrase[],
  cfg: SpotterConfig,
  workDir: string,
): Promise<Detection[]> {
  checkModel(cfg);
  const kws = join(workDir, 'phrases.kws');
  await writeFile(kws, kwsFile(phrases));
  const log = join(workDir, 'pocketsphinx.log');
  const args = [
    ['-infile', rawPath],
    ['-kws', kws],
    ['-hmm', cfg.hmmDir],
    ['-dict', cfg.dictPath],
    ['-samprate', String(SAMPLE_RATE)],
    // Keep silent frames: times stay counted from the start of the recording (with silence removed they are
    // not), and detection after a pause was better in our measurements.
    ['-remove_silence', 'no'],
    ['-kws_plp', cfg.phoneLoopProbability.toExponential()],
    ['-time', 'yes'],
    ['-logfn', log],
  ].flat();
  try {
    const { stdout } = await runTool(cfg.pocketsphinxPath, args, cfg.timeoutMs, 'triage.pocketsphinxPath');
    return parseDetections(stdout, phrases);
  } catch (e) {
    // pocketsphinx writes its reasons to the log file, not stderr.
    const why = await readFile(log, 'utf8').then(
      (t) =>
        t
          .split('\n')
          .filter((l) => /ERROR|FATAL/.test(l))
          .slice(-2)
          .join(' | '),
      () => '',
    );
    if (why && e instanceof CallboxError) throw new CallboxError(e.code, `${e.message}; ${why}`);
    throw e;
  }
}

/** A temporary folder (0700) for one job under `base` (default: the system's), removed after `fn`. */
export async function withWorkDir<T>(fn: (dir: string) => Promise<T>, base = tmpdir()): Promise<T> {
  await mkdir(base, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(base, 'triage-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
