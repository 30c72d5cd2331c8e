/**
 * Postcard's primitive encodings: LEB128 varints, zigzag, little-endian
 * floats, length-prefixed bytes and strings. Driven by a schema in
 * `schema.ts`; nothing here knows about types beyond the primitives.
 */
import { DecodeError } from "./errors.js";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A growable byte buffer that postcard values are written to. */
export class Writer {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** The bytes written so far. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b & 0xff;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** An unsigned varint; `n` is a non-negative integer (number or bigint). */
  varint(n: number | bigint): void {
    if (typeof n === "number" && n <= 0xffffffff) {
      while (n > 0x7f) {
        this.byte((n & 0x7f) | 0x80);
        n = Math.floor(n / 128);
      }
      this.byte(n);
      return;
    }
    let v = BigInt(n);
    while (v > 0x7fn) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  /** A signed integer, zigzagged then as a varint. */
  zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }

  f32(x: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, x, true);
    this.length += 4;
  }

  f64(x: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, x, true);
    this.length += 8;
  }

  /** A varint length, then the bytes. */
  bytesWithLen(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.raw(bytes);
  }

  string(s: string): void {
    this.bytesWithLen(utf8.encode(s));
  }
}

/** Reads postcard primitives from a byte slice; any overrun is a {@link DecodeError}. */
export class Reader {
  offset = 0;
  private readonly view: DataView;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) {
      throw new DecodeError(`unexpected end of data reading ${what} (need ${n} bytes, ${this.remaining} left)`);
    }
  }

  byte(): number {
    this.need(1, "a byte");
    return this.buf[this.offset++]!;
  }

  raw(n: number, what = "bytes"): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** An unsigned varint of at most `bits` bits, as a bigint. */
  varintBig(bits: number): bigint {
    const maxBytes = Math.ceil(bits / 7);
    let result = 0n;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (result >> BigInt(bits) !== 0n) throw new DecodeError(`varint out of range for ${bits} bits`);
        return result;
      }
    }
    throw new DecodeError(`varint longer than ${maxBytes} bytes for ${bits} bits`);
  }

  /** An unsigned varint of at most 32 bits, as a number. */
  varint32(bits = 32): number {
    const maxBytes = Math.ceil(bits / 7);
    let result = 0;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (result >= 2 ** bits) throw new DecodeError(`varint out of range for ${bits} bits`);
        return result;
      }
    }
    throw new DecodeError(`varint longer than ${maxBytes} bytes for ${bits} bits`);
  }

  /** A zigzag varint of `bits` bits, as a bigint. */
  zigzagBig(bits: number): bigint {
    const u = this.varintBig(bits);
    return u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
  }

  /** A length prefix, checked against what is left (so a garbage length never allocates). */
  len(what: string, minItemSize = 1): number {
    const n = this.varint32();
    if (n * minItemSize > this.remaining) {
      throw new DecodeError(`${what} announces ${n} items but only ${this.remaining} bytes are left`);
    }
    return n;
  }

  f32(): number {
    this.need(4, "an f32");
    const x = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return x;
  }

  f64(): number {
    this.need(8, "an f64");
    const x = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return x;
  }

  bytesWithLen(): Uint8Array {
    return this.raw(this.len("a byte string"), "a byte string");
  }

  string(): string {
    const bytes = this.raw(this.len("a string"), "a string");
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new DecodeError("a string is not valid UTF-8");
    }
  }
}

/** FNV-1a 64 of the UTF-8 bytes of `text`: a netsock `SchemaId`. */
export function fnv1a64(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const b of utf8.encode(text)) {
    hash ^= BigInt(b);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}
