/**
 * A cap on MQTT packet sizes, applied to the bytes of a connection before
 * aedes parses them, and so before authentication: the way Mosquitto's
 * max_packet_size works. aedes's parser (mqtt-packet) keeps reading a packet
 * until its announced length has arrived, so a socket announcing a 256 MB
 * CONNECT made the broker hold whatever it was sent; here the fixed header
 * is read as it arrives and a connection announcing a packet over the cap is
 * cut at once, before its body is buffered anywhere.
 *
 * - the first packet must be a CONNECT of at most `firstPacketMax` bytes
 *   (MQTT-3.1.0-1: the first packet from a client is CONNECT);
 * - every later packet at most `packetMax` (raised for the fleet's own
 *   login with allow(), whose answers may be larger than a box's messages).
 *
 * The guard is a Duplex that passes bytes through unchanged both ways; it
 * reads the fixed header of each packet (MQTT 3.1.1 section 2.2: one type
 * byte, then the remaining length in 1 to 4 bytes of 7 bits, least
 * significant first) and skips the body.
 */
import { Duplex } from 'node:stream';

export interface PacketGuardOptions {
  /** Largest first packet (the CONNECT), in bytes of its remaining length. */
  firstPacketMax: number;
  /** Largest later packet. */
  packetMax: number;
  /** Called once when a connection is cut, with why. */
  onRefuse: (reason: string, announcedBytes: number) => void;
}

const CONNECT = 1;

export class PacketGuard extends Duplex {
  /** The peer's address, for logs and per-source limits. */
  readonly remoteAddress: string | undefined;
  private packetMax: number;
  private first = true;
  /** Bytes of the current packet's body still to pass; -1 while reading a fixed header. */
  private bodyLeft = -1;
  private header: number[] = [];
  private refused = false;

  constructor(
    private readonly inner: Duplex & { remoteAddress?: string },
    private readonly opts: PacketGuardOptions,
  ) {
    super({ allowHalfOpen: false });
    this.remoteAddress = inner.remoteAddress;
    this.packetMax = opts.packetMax;
    inner.on('data', (chunk: Buffer) => {
      if (this.refused) return;
      const problem = this.inspect(chunk);
      if (problem) {
        this.refused = true;
        this.opts.onRefuse(problem.reason, problem.bytes);
        inner.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  /** Raise the cap for this connection (the fleet's own login). */
  allow(packetMax: number): void {
    this.packetMax = packetMax;
  }

  private inspect(chunk: Buffer): { reason: string; bytes: number } | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.bodyLeft = -1;
        continue;
      }
      this.header.push(chunk[i] as number);
      i++;
      if (this.header.length === 1) {
        if (this.first && (this.header[0] as number) >> 4 !== CONNECT) {
          return { reason: 'the first packet is not a CONNECT', bytes: 0 };
        }
        continue;
      }
      const lengthByte = this.header[this.header.length - 1] as number;
      if (lengthByte & 0x80) {
        if (this.header.length === 5) return { reason: 'malformed remaining length', bytes: 0 };
        continue;
      }
      let remaining = 0;
      for (let k = this.header.length - 1; k >= 1; k--)
        remaining = remaining * 128 + ((this.header[k] as number) & 0x7f);
      const max = this.first ? this.opts.firstPacketMax : this.packetMax;
      if (remaining > max) {
        return {
          reason: `${this.first ? 'CONNECT' : 'packet'} of ${remaining} bytes announced, over the ${max} allowed`,
          bytes: remaining,
        };
      }
      this.first = false;
      this.header = [];
      this.bodyLeft = remaining > 0 ? remaining : -1;
    }
    return undefined;
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inner.write(chunk, encoding, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy();
    cb(err);
  }
}
