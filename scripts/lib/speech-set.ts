/**
 * The labelled set for voicemail triage: synthetic messages made with
 * espeak-ng (voices, speeds, pitches) and sox (phone-band 8 kHz and back,
 * background noise, level), half with an urgent phrase inside a natural
 * sentence, half routine, each with its ground-truth label.
 *
 * Two halves that share no wording and no voice: "tune" (sentence A of each
 * pair, voices of group A) to choose thresholds on, "eval" (sentence B,
 * voices of group B) to report on. Made once and cached under
 * .cache/speech-set/<hash of everything that shapes the audio>/ (git-ignored).
 * Used by bench/triage.ts and the triage tests.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Voice {
  /** espeak-ng voice (-v). */
  v: string;
  /** words per minute (-s). */
  s: number;
  /** pitch 0..99 (-p). */
  p: number;
  /** white-noise amplitude mixed in (0: none). */
  noise: number;
  /** through a phone band: 300-3400 Hz at 8 kHz, and back. */
  phone: boolean;
}

export interface Message {
  id: string;
  half: 'tune' | 'eval';
  urgent: boolean;
  /** The urgent phrase said in it (urgent messages). */
  phrase: string | null;
  text: string;
  voice: Voice;
  file: string;
}

/** Urgent phrasings: two natural sentences for each default phrase (A tunes, B evaluates). */
const URGENT: readonly { phrase: string; a: string; b: string }[] = [
  {
    phrase: 'chest pain',
    a: 'hi this is John, my father has chest pain and he is sweating, please call me back',
    b: 'hello, I have had chest pain since this morning and it is getting worse',
  },
  {
    phrase: "can't breathe",
    a: "it's Maria, my son can't breathe properly after his asthma attack, what do we do",
    b: "please call back quickly, my wife says she can't breathe and her lips look blue",
  },
  {
    phrase: 'cannot breathe',
    a: 'hello doctor, my mother cannot breathe well tonight, she needs help',
    b: 'this is Tom, I cannot breathe when I lie down and I am scared',
  },
  {
    phrase: 'bleeding',
    a: 'my daughter cut her hand on glass and the bleeding will not stop',
    b: 'hi, I had my surgery last week and now the wound is bleeding a lot',
  },
  {
    phrase: 'overdose',
    a: 'I think my brother took an overdose of his pills, he is very sleepy',
    b: 'this is Anna, my friend may have had an overdose, please call me now',
  },
  {
    phrase: 'unconscious',
    a: 'my husband fell in the kitchen and he is unconscious, I do not know what to do',
    b: 'hello, grandpa was unconscious for a minute and now he is confused',
  },
  {
    phrase: 'suicide',
    a: 'hi, my son has been talking about suicide all evening and I am worried',
    b: 'this is Kate, I keep having thoughts of suicide and I need to talk to someone',
  },
  {
    phrase: 'stroke',
    a: 'my father face is drooping and he can hardly speak, I think it is a stroke',
    b: 'hello, my aunt may be having a stroke, her arm is weak and numb',
  },
  {
    phrase: 'seizure',
    a: 'my little girl just had a seizure and she is still very drowsy',
    b: 'hi, this is Paul, my wife had a seizure ten minutes ago, please call',
  },
  {
    phrase: 'allergic reaction',
    a: 'my son ate peanuts and has an allergic reaction, his face is swelling',
    b: 'hello, I think I am having an allergic reaction to the new medicine',
  },
  {
    phrase: 'emergency',
    a: 'this is an emergency, my mother collapsed and is not answering me',
    b: 'please call me back, it is an emergency with my baby, she is burning hot',
  },
  {
    phrase: 'heart attack',
    a: 'my husband thinks he is having a heart attack, his arm hurts badly',
    b: 'hi, my dad had a heart attack last year and now the same pain is back',
  },
];

/** Routine phrasings (A tunes, B evaluates). */
const ROUTINE: readonly { a: string; b: string }[] = [
  {
    a: "hi, I'd like to reschedule my appointment on thursday to next week",
    b: 'hello, could I move my check up to a morning slot please',
  },
  {
    a: 'this is Sarah, I am calling to ask if my prescription is ready to pick up',
    b: 'hi, I need a refill of my blood pressure tablets when you have time',
  },
  {
    a: 'hello, can you tell me your opening hours on saturday, thank you',
    b: 'hi, are you open on the holiday monday or closed, thanks',
  },
  {
    a: 'hi, I am calling about the bill I received last month, it seems too high',
    b: 'hello, I would like a copy of my invoice for my insurance company',
  },
  {
    a: 'this is Mark, I want to book a flu shot for me and my wife',
    b: 'hello, do you still have vaccines for children this season',
  },
  {
    a: 'hi, just letting you know I will be ten minutes late tomorrow',
    b: 'hello, I need to cancel my visit on friday, I am travelling',
  },
  {
    a: 'hello, could the doctor call me about my test results when they are in',
    b: 'hi, I am waiting for the letter from the specialist, has it arrived',
  },
  {
    a: 'hi, I moved house, I would like to update my address and phone number',
    b: 'hello, my email address changed, please update it in your records',
  },
  {
    a: 'this is Linda, I would like to register my new baby with the practice',
    b: 'hi, we are new in town and want to join the clinic as a family',
  },
  {
    a: 'hello, I need a sick note for work for last week, how do I get it',
    b: 'hi, my employer asks for a form to be signed by the doctor',
  },
  {
    a: 'hi, is there parking near the clinic or should I take the bus',
    b: 'hello, which entrance do I use for the blood test room',
  },
  {
    a: 'hello, thank you for the help last week, my knee is much better now',
    b: 'hi, I just wanted to say the new tablets are working well, thanks',
  },
];

/** Voices of the tuning half and of the evaluation half: none shared. */
const VOICES: Record<'tune' | 'eval', readonly Voice[]> = {
  tune: [
    { v: 'en-us', s: 150, p: 50, noise: 0, phone: false },
    { v: 'en-gb-x-rp+f2', s: 170, p: 65, noise: 0.01, phone: true },
  ],
  eval: [
    { v: 'en-gb-scotland+m3', s: 140, p: 40, noise: 0.005, phone: true },
    { v: 'en-us+f4', s: 165, p: 55, noise: 0.02, phone: false },
  ],
};

/** Bump when the way audio is made changes (the cache key includes it). */
const GENERATOR_VERSION = 2;

export interface SetOptions {
  /** Where caches go (default .cache/speech-set under the working folder). */
  cacheRoot?: string;
  /** Voices per sentence and half (1 or 2; default 1: 48 messages). */
  voicesPerSentence?: 1 | 2;
}

function plan(o: SetOptions): Omit<Message, 'file'>[] {
  const per = o.voicesPerSentence ?? 1;
  const out: Omit<Message, 'file'>[] = [];
  for (const half of ['tune', 'eval'] as const) {
    const voices = VOICES[half];
    const pick = (i: number, k: number) => voices[(i + k) % voices.length] as Voice;
    URGENT.forEach((u, i) => {
      for (let k = 0; k < per; k++) {
        out.push({
          id: `${half}-u${i}-${k}`,
          half,
          urgent: true,
          phrase: u.phrase,
          text: half === 'tune' ? u.a : u.b,
          voice: pick(i, k),
        });
      }
    });
    ROUTINE.forEach((r, i) => {
      for (let k = 0; k < per; k++) {
        out.push({
          id: `${half}-r${i}-${k}`,
          half,
          urgent: false,
          phrase: null,
          text: half === 'tune' ? r.a : r.b,
          voice: pick(i + 1, k),
        });
      }
    });
  }
  return out;
}

/** One message: espeak-ng -> (phone band at 8 kHz and back) -> padded -> noise -> 16-bit mono WAV (8 kHz for phone). */
async function render(m: Omit<Message, 'file'>, file: string): Promise<void> {
  const tmp = `${file}.tmp.wav`;
  const speech = `${tmp}.speech.wav`;
  const shaped = `${tmp}.shaped.wav`;
  try {
    await run('espeak-ng', ['-v', m.voice.v, '-s', String(m.voice.s), '-p', String(m.voice.p), '-w', speech, m.text]);
    // A phone-band message is kept at 8 kHz (as a GSM call is recorded), the others at 16 kHz.
    const rate = m.voice.phone ? '8000' : '16000';
    const band = m.voice.phone ? ['rate', '8000', 'sinc', '300-3400', 'rate', '16000'] : ['rate', '16000'];
    await run('sox', ['-V1', speech, '-c', '1', '-b', '16', shaped, ...band, 'pad', '0.6', '1.2', 'norm', '-3']);
    if (m.voice.noise > 0) {
      const { stdout } = await run('soxi', ['-D', shaped]);
      const noise = `${tmp}.noise.wav`;
      await run('sox', [
        '-V1',
        '-R',
        '-n',
        '-r',
        '16000',
        '-c',
        '1',
        '-b',
        '16',
        noise,
        'synth',
        stdout.trim(),
        'whitenoise',
        'vol',
        String(m.voice.noise),
      ]);
      await run('sox', ['-V1', '-m', shaped, noise, '-b', '16', '-r', rate, tmp, 'dither', '-s']);
      await rm(noise, { force: true });
    } else {
      await run('sox', ['-V1', shaped, '-r', rate, '-b', '16', tmp]);
    }
    await rename(tmp, file);
  } finally {
    await rm(speech, { force: true });
    await rm(shaped, { force: true });
  }
}

/** The cache folder of these options (made by makeSpeechSet). */
function setDir(o: SetOptions = {}): string {
  const key = createHash('sha256')
    .update(JSON.stringify({ v: GENERATOR_VERSION, URGENT, ROUTINE, VOICES, per: o.voicesPerSentence ?? 1 }))
    .digest('hex')
    .slice(0, 16);
  return join(o.cacheRoot ?? join(process.cwd(), '.cache', 'speech-set'), key);
}

/** Make (or read from the cache) the labelled set. */
export async function makeSpeechSet(o: SetOptions = {}): Promise<{ dir: string; messages: Message[]; made: number }> {
  const dir = setDir(o);
  await mkdir(dir, { recursive: true });
  const labels = join(dir, 'labels.json');
  if (existsSync(labels)) return { dir, messages: JSON.parse(await readFile(labels, 'utf8')), made: 0 };
  const messages: Message[] = [];
  let made = 0;
  for (const m of plan(o)) {
    const file = join(dir, `${m.id}.wav`);
    if (!existsSync(file)) {
      await render(m, file);
      made++;
    }
    messages.push({ ...m, file });
  }
  await writeFile(labels, JSON.stringify(messages, null, 1));
  return { dir, messages, made };
}

/** One urgent or routine message alone, cached like the set (tests). */
export async function makeMessage(text: string, voice: Voice, o: { cacheRoot?: string } = {}): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify({ v: GENERATOR_VERSION, text, voice }))
    .digest('hex')
    .slice(0, 16);
  const dir = join(o.cacheRoot ?? join(process.cwd(), '.cache', 'speech-set'), 'single');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${key}.wav`);
  if (!existsSync(file)) await render({ id: key, half: 'eval', urgent: false, phrase: null, text, voice }, file);
  return file;
}
