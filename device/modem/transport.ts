/**
 * The modem's only hardware seam: a factory that opens a byte stream.
 *
 * Contract (ByteStream):
 * - 'data' carries every chunk read, in order;
 * - 'close' is emitted exactly once when the stream ends for any reason
 *   (unplug, USB re-enumeration, EIO, remote end of a TCP link, close());
 *   `err` is null after close();
 * - write() resolves when the bytes have been handed to the OS and rejects
 *   if the stream is closed or the write fails; it never hangs after 'close'.
 *
 * Paths: a device path opens the real `serialport` (use stable
 * /dev/serial/by-id/... names: they name the USB interface, so the AT port
 * stays the AT port when ttyUSB numbers shuffle); `tcp://host:port` opens a
 * socket to a modem behind ser2net (raw mode).
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
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

class SerialStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  private closed = false;
  constructor(
    private readonly port: SerialPort,
    readonly description: string,
  ) {
    super();
    port.on('data', (d: Buffer) => this.emit('data', d));
    port.on('close', (err: Error | null) => this.end(err ?? null));
    port.on('error', (err: Error) => {
      // serialport reports read errors (EIO on unplug) here; the port is unusable afterwards.
      this.end(err);
      if (port.isOpen) port.close(() => {});
    });
  }
  private end(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', err);
  }
  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || !this.port.isOpen) {
        reject(new Error(`${this.description} is closed`));
        return;
      }
      this.port.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }
  close(): Promise<void> {
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

function openSerial(o: OpenOptions): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: o.path, baudRate: o.baudRate, rtscts: o.rtscts, autoOpen: false });
    port.open((err) => {
      if (err) reject(err);
      else resolve(new SerialStream(port, o.path));
    });
  });
}

/** The default factory: serialport for device paths, a socket for tcp://. */
export const openByteStream: ByteStreamFactory = (o) => (o.path.startsWith('tcp://') ? openTcp(o.path) : openSerial(o));
