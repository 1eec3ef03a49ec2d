/**
 * The Pi header's GPIO path as the box runs it: johnny-five -> LinuxGpioIo -> libgpiod's tools, spawned from PATH,
 * against device/sim/gpiod's stand-ins for both generations of the tools (v1: Debian 12 / Bookworm, v2: Debian 13)
 * over a simulated chip. The generation is detected at start; a dead watcher (the panic button's gpiomon) is
 * restarted, an edge missed while it was down is caught, and the board is unhealthy meanwhile; writing to a dying
 * gpioset never crashes the box; missing tools give one clear error at start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type OpenedBoard, openBoard } from '../device/io/board.js';
import { detectGpiod, LibgpiodToolsBackend } from '../device/io/linux-gpio.js';
import { Panel } from '../device/io/outputs.js';
import { loadPinmap } from '../device/io/pinmap.js';
import { type GpiodVersion, SimulatedGpioChip } from '../device/sim/gpiod/chip.js';
import { waitFor } from '../shared/wait.js';

const pinmap = loadPinmap();
const PANIC = pinmap.signals['button.panic'].gpio;
const RING = pinmap.signals['led.ring'].gpio;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(version: GpiodVersion) {
  const chip = await new SimulatedGpioChip('gpiochip0', version).start();
  cleanups.push(() => chip.stop());
  const died: string[] = [];
  const backend = new LibgpiodToolsBackend({
    dialect: await detectGpiod(chip.env),
    env: chip.env,
    minBackoffMs: 50,
    maxBackoffMs: 200,
    onToolDied: (d) => died.push(`${d.cmd}:${d.line}`),
  });
  const opened: OpenedBoard = await openBoard(
    { board: 'linux-gpio', gpioChip: 'gpiochip0', firmataPath: '', firmataBaudRate: 57600 },
    { gpioBackend: backend, readyTimeoutMs: 20_000 },
  );
  const panel = new Panel(opened, pinmap);
  cleanups.push(() => panel.close());
  const presses: boolean[] = [];
  panel.on('panic', (p) => presses.push(p));
  return { chip, backend, panel, presses, died };
}

describe.each(['v1', 'v2'] as const)("libgpiod %s tools behind the Pi header's IO plugin", (version) => {
  it('detects the generation, drives an LED and sees the panic button', async () => {
    const { chip, backend, presses } = await rig(version);
    expect(backend.dialect).toBe(version);
    // The panic input is watched by gpiomon, the LEDs are held by gpioset.
    await waitFor(() => chip.holderTool(PANIC) === 'gpiomon', 'panic watched');
    await waitFor(() => chip.holderTool(RING) === 'gpioset', 'ring LED held');
    chip.drive(PANIC, 0);
    await waitFor(() => presses.includes(true), 'press seen');
    chip.drive(PANIC, 1);
    await waitFor(() => presses.at(-1) === false, 'release seen');
  }, 60_000);

  it('restarts a dead gpiomon, catches the press made while it was down, and is unhealthy meanwhile', async () => {
    const { chip, backend, panel, presses, died } = await rig(version);
    await waitFor(() => chip.holderTool(PANIC) === 'gpiomon', 'panic watched');
    // Healthy means every input's watcher runs, not only the panic button's: the others may still be starting.
    await waitFor(() => panel.healthy(), 'panic watcher counted live');
    const pid = chip.holderPid(PANIC)!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => died.includes(`gpiomon:${PANIC}`), 'death noticed');
    expect(backend.healthy()).toBe(false);
    expect(panel.healthy()).toBe(false);
    // Pressed while nobody watches: the level read before watching again reports it.
    chip.drive(PANIC, 0);
    await waitFor(() => chip.holderTool(PANIC) === 'gpiomon' && chip.holderPid(PANIC) !== pid, 'watched again');
    await waitFor(() => presses.includes(true), 'press caught');
    expect(panel.healthy()).toBe(true);
    chip.drive(PANIC, 1);
    await waitFor(() => presses.at(-1) === false, 'release seen');
  }, 60_000);

  it('holds LED levels, restarts a dead gpioset with the level it should hold, and survives writes to it', async () => {
    const { chip, panel, died } = await rig(version);
    await waitFor(() => chip.holderTool(RING) === 'gpioset', 'ring LED held');
    const ledPin = (on: boolean) => {
      const activeLow = pinmap.signals['led.ring'].activeLow;
      return on !== activeLow ? 1 : 0;
    };
    const show = (ring: boolean) =>
      panel.show({
        leds: Object.fromEntries(
          ['ring', 'missed', 'voicemail', 'status', 'fault', 'panic'].map((n) => [
            n,
            { kind: n === 'ring' && ring ? 'on' : 'off' },
          ]),
        ) as never,
        buzzer: { pattern: 'silent', volume: 0 },
      } as never);
    show(true);
    await waitFor(() => chip.level(RING) === ledPin(true), 'LED on');
    const pid = chip.holderPid(RING)!;
    process.kill(pid, 'SIGKILL');
    // Writing while the holder is dying must not throw (EPIPE on v2's stdin).
    show(false);
    show(true);
    show(false);
    await waitFor(() => died.includes(`gpioset:${RING}`), 'gpioset restarted');
    await waitFor(() => chip.holderTool(RING) === 'gpioset' && chip.holderPid(RING) !== pid, 'held again');
    await waitFor(() => chip.level(RING) === ledPin(false), 'LED off as last shown');
    show(true);
    await waitFor(() => chip.level(RING) === ledPin(true), 'LED on again');
  }, 60_000);
});

describe('libgpiod tools missing or of the wrong generation', () => {
  it('says what to install, once, instead of a board that fails every spawn', async () => {
    const env = { ...process.env, PATH: '/nonexistent' };
    await expect(detectGpiod(env)).rejects.toThrow(/gpioset is not installed.*Debian package gpiod/);
    await expect(
      openBoard(
        { board: 'linux-gpio', gpioChip: 'gpiochip0', firmataPath: '', firmataBaudRate: 57600 },
        { env, readyTimeoutMs: 5000 },
      ),
    ).rejects.toThrow(/needs libgpiod's tools/);
  });

  it("the stand-ins refuse the other generation's command line, as the real tools do", async () => {
    const chip = await new SimulatedGpioChip('gpiochip0', 'v1').start();
    cleanups.push(() => chip.stop());
    const { execFile } = await import('node:child_process');
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((r) => {
        const c = execFile('gpioget', args, { env: chip.env }, (_e, _o, err) => r({ code: c.exitCode, err }));
      });
    const v2Syntax = await run(['--chip', 'gpiochip0', '--numeric', '--bias', 'pull-up', '5']);
    expect(v2Syntax.code).toBe(1);
    expect(v2Syntax.err).toMatch(/unrecognized option '--chip'/);
    const v1Syntax = await run(['--bias=pull-up', 'gpiochip0', '5']);
    expect(v1Syntax.code).toBe(0);
  });
});
