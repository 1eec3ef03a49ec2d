/**
 * The modem's only hardware seam: a factory that opens a byte stream.
 *
 * Contract (ByteStream):
 * - 'data' carries every chunk read, in order;
 * - 'close' is emitted exactly once when the stream ends for any reason, at
 *   once: end of file on read (the other end of a pty closed, a USB tty hung
 *   up), EIO/ENXIO/ENODEV/EBADF on read or write, serialport's close with
 *   `disconnected`, the device node disappearing or being replaced, the
 *   remote end of a TCP link, close(); `err` is null after close() and
 *   names the reason otherwise (`code` 'EOF' for end of file, 'ENODEV' for
 *   a vanished node, else the system's code);
 * - after 'close' nothing reads the port any more (no reader left spinning)
 *   and write() rejects at once;
 * - write() resolves when the bytes have been handed to the OS and rejects
 *   if the stream is closed or the write fails; it never hangs after 'close'.
 *
 * Paths: a device path opens the real `serialport` (use stable
 * /dev/serial/by-id/... names: they name the USB interface, so the AT port
 * stays the AT port when ttyUSB numbers shuffle); `tcp://host:port` opens a
 * socket to a modem behind ser2net (raw mode). devicePresent() tells the
 * driver whether a device path exists, so that it reopens the moment a
 * replugged modem's node is back instead of at its next backoff step.
 *
 * Why the reader is guarded: @serialport/bindings-cpp 13's unixRead treats
 * a read of 0 bytes (end of file) as "read again" and calls itself at once
 * (serialport/bindings-cpp#162; the fix #164 was never merged). A hung-up
 * tty returns 0 forever, so the port never reports 'close', a reader thread
 * spins at full speed and the promise chain grows until the process is out
 * of memory. `npm run bench:serialport-eof` reproduces it; guardedBinding()
 * below reads the same way but turns 0 bytes into a disconnect.
 */
import { EventEmitter } from 'node:events';
import { type FSWatcher, read as fsRead, type Stats, stat, watch } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';

export interface ByteStreamEvents {
  data: [chunk: Buffer];
  close: [err: Error | null];
}

export interface ByteStream extends EventEmitter<ByteStreamEvents> {
  write(data: Buffer): Promise<void>;
  close(): Promise<void>;
  readonly description: string;
}

export interface OpenOptions {
  path: string;
  baudRate: number;
  rtscts: boolean;
}

export type ByteStreamFactory = (o: OpenOptions) => Promise<ByteStream>;

/** Error codes that mean the port itself is gone (not a bad request). */
const GONE_CODES = new Set(['EOF', 'EIO', 'ENXIO', 'ENODEV', 'EBADF', 'ENOENT', 'EPIPE', 'UNKNOWN']);

function portError(message: string, code: string, cause?: unknown): Error & { code: string; disconnect: true } {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as Error & {
    code: string;
    disconnect: true;
  };
  e.code = code;
  e.disconnect = true;
  return e;
}

// ---------------------------------------------------------------- the guarded serialport binding

type Binding = typeof SerialPort.binding;
type BindingPort = Awaited<ReturnType<Binding['open']>>;

/** The parts of bindings-cpp's unix port binding (LinuxPortBinding, DarwinPortBinding) the guarded read uses. */
interface UnixPort {
  fd: number | null;
  readonly isOpen: boolean;
  poller: { once(event: 'readable', cb: (err: Error | null) => void): unknown };
}

const readAsync = promisify(fsRead);

function canceled(): Error {
  return Object.assign(new Error('Port is not open'), { canceled: true });
}

/**
 * bindings-cpp's unix read, with end of file as a disconnect: read(2) on the
 * non-blocking fd; EAGAIN waits for the poller's 'readable'; 0 bytes or any
 * other error is the port going away (serialport's stream then closes the
 * port with a DisconnectedError, which is our 'close').
 */
async function guardedRead(port: UnixPort, buffer: Buffer, offset: number, length: number) {
  for (;;) {
    const fd = port.fd;
    if (!port.isOpen || fd === null) throw canceled();
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(fd, buffer, offset, length, null));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'UNKNOWN';
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
        if (!port.isOpen) throw canceled();
        await new Promise<void>((resolve, reject) =>
          port.poller.once('readable', (err) => (err ? reject(err) : resolve())),
        );
        continue;
      }
      if (!port.isOpen) throw canceled(); // closed under the read (EBADF): our own close()
      throw portError(`read failed: ${(e as Error).message}`, code, e);
    }
    if (bytesRead === 0) {
      if (!port.isOpen) throw canceled();
      throw portError('end of file on read: the other end hung up (unplugged?)', 'EOF');
    }
    return { bytesRead, buffer };
  }
}

/**
 * serialport's platform binding with the guarded read on unix ports. On a
 * platform whose port has no fd/poller (Windows) the binding is used as is.
 */
export function guardedBinding(base: Binding = SerialPort.binding): Binding {
  return {
    list: () => base.list(),
    async open(options: Parameters<Binding['open']>[0]) {
      const port = (await base.open(options as never)) as BindingPort;
      const unix = port as unknown as Partial<UnixPort>;
      if (typeof unix.fd === 'number' && unix.poller) {
        const p = port as unknown as UnixPort & { read: BindingPort['read'] };
        p.read = (buffer, offset, length) => guardedRead(p, buffer, offset, length);
      }
      return port;
    },
  } as Binding;
}

const GUARDED = guardedBinding();

// ---------------------------------------------------------------- device node watch

function statOf(path: string): Promise<Stats | null> {
  return new Promise((resolve) => stat(path, (err, st) => resolve(err ? null : st)));
}

function sameNode(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.rdev === b.rdev;
}

/**
 * Watches a device path (inotify on its directory: free while nothing
 * changes there) and calls `gone` once when the node is removed or replaced
 * by another device (a re-enumerated modem's new tty behind the same
 * by-id name).
 */
class NodeWatch {
  private watcher: FSWatcher | null = null;
  private checking = false;
  private done = false;

  constructor(
    private readonly path: string,
    private readonly node: Stats,
    private readonly gone: (why: string) => void,
  ) {
    const name = basename(path);
    try {
      this.watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file === null || file === name || String(file) === name) this.check();
      });
      // The directory itself went away (udev removes /dev/serial/by-id with the last device).
      this.watcher.on('error', () => this.check());
    } catch {
      this.watcher = null; // not watchable: the read guard and the driver's liveness probe still notice
    }
  }

  private check(): void {
    if (this.done || this.checking) return;
    this.checking = true;
    void statOf(this.path).then((now) => {
      this.checking = false;
      if (this.done) return;
      if (!now) this.fire(`device node ${this.path} disappeared`);
      else if (!sameNode(now, this.node)) this.fire(`device node ${this.path} now names another device`);
    });
  }

  private fire(why: string): void {
    this.stop();
    this.gone(why);
  }

  stop(): void {
    this.done = true;
    this.watcher?.close();
    this.watcher = null;
  }
}

// ---------------------------------------------------------------- streams

class SerialStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  private closed = false;
  private readonly watch: NodeWatch | null;
  constructor(
    private readonly port: SerialPort,
    readonly description: string,
    node: Stats | null,
  ) {
    super();
    port.on('data', (d: Buffer) => this.emit('data', d));
    // serialport closes the port itself on a read or write failure (its DisconnectedError carries our reason).
    port.on('close', (err: Error | null) => this.end(err ?? null));
    port.on('error', (err: Error) => this.drop(err));
    this.watch = node ? new NodeWatch(description, node, (why) => this.drop(portError(why, 'ENODEV'))) : null;
  }

  /** The port is unusable: report it now, then release it. */
  private drop(err: Error): void {
    this.end(err);
    if (this.port.isOpen) this.port.close(() => {});
  }

  private end(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.watch?.stop();
    this.emit('close', err);
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || !this.port.isOpen) {
        reject(portError(`${this.description} is closed`, 'EBADF'));
        return;
      }
      this.port.write(data, (err) => {
        if (!err) {
          resolve();
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        // A write that fails because the port is gone takes the stream down at once (serialport does
        // too for most errors; this makes it the contract, whatever the binding does).
        if (code && GONE_CODES.has(code)) this.drop(err);
        reject(err);
      });
    });
  }

  close(): Promise<void> {
    this.watch?.stop();
    return new Promise((resolve) => {
      if (!this.port.isOpen) {
        this.end(null);
        resolve();
        return;
      }
      this.port.close(() => {
        this.end(null);
        resolve();
      });
    });
  }
}

class TcpStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  private closed = false;
  constructor(
    private readonly sock: Socket,
    readonly description: string,
  ) {
    super();
    sock.on('data', (d: Buffer) => this.emit('data', d));
    sock.on('error', () => {}); // 'close' follows
    sock.on('close', (hadError) =>
      this.end(
        hadError ? new Error(`${description} closed with an error`) : new Error(`${description} closed by peer`),
      ),
    );
  }
  private end(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', err);
  }
  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error(`${this.description} is closed`));
        return;
      }
      this.sock.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve();
        return;
      }
      this.sock.once('close', () => resolve());
      this.closed = true;
      this.emit('close', null);
      this.sock.destroy();
    });
  }
}

function openTcp(url: string): Promise<ByteStream> {
  const m = /^tcp:\/\/([^:/]+):(\d{1,5})\/?$/.exec(url);
  if (!m) return Promise.reject(new RangeError(`modem path "${url}" is not tcp://host:port`));
  const host = m[1] as string;
  const port = Number(m[2]);
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    sock.setNoDelay(true);
    const onError = (err: Error) => reject(err);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(new TcpStream(sock, url));
    });
  });
}

function openSerial(o: OpenOptions, binding: Binding = GUARDED): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({
      path: o.path,
      baudRate: o.baudRate,
      rtscts: o.rtscts,
      autoOpen: false,
      // SerialPort's options type leaves the binding out; at run time it is passed through.
      ...({ binding } as object),
    });
    port.open((err) => {
      if (err) {
        reject(err);
        return;
      }
      // The node as opened, to notice when it disappears or is replaced.
      void statOf(o.path).then((node) => resolve(new SerialStream(port, o.path, node)));
    });
  });
}

/** A serialport factory on a given binding (tests wrap the guarded one to make writes fail). */
export function serialFactory(binding: Binding): ByteStreamFactory {
  return (o) => (o.path.startsWith('tcp://') ? openTcp(o.path) : openSerial(o, binding));
}

/** Whether the device path exists now (always true for tcp://: a socket has no node to wait for). */
export function devicePresent(path: string): Promise<boolean> {
  if (path.startsWith('tcp://')) return Promise.resolve(true);
  return statOf(path).then((s) => s !== null);
}

/** The error means the device node is not there (open of a missing path, a vanished node). */
export function isAbsentError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || code === 'ENODEV') return true;
  return e instanceof Error && /ENOENT|no such file/i.test(e.message);
}

/** The default factory: serialport for device paths, a socket for tcp://. */
export const openByteStream: ByteStreamFactory = (o) => (o.path.startsWith('tcp://') ? openTcp(o.path) : openSerial(o));
