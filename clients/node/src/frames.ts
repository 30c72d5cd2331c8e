/**
 * Frames: a 4-byte big-endian length, then a body made of a postcard
 * header (the frame kind and its fields) and, for `Event`, `Request`,
 * `Response`, `StreamItem`, `Volatile` and `UploadItem`, a payload running
 * to the end. See the book's "Wire protocol"
 * chapter. A new frame kind is one more `case` in `encodeHeader` and
 * `decodeFrame`; a kind this version does not know is a `ProtocolError`.
 */
import { DecodeError, ProtocolError, type CloseReason, type RejectReason } from "./errors.js";
import { Reader, Writer } from "./postcard.js";

/** `NSCK`, the first bytes of every `Hello`. */
export const MAGIC = new Uint8Array([0x4e, 0x53, 0x43, 0x4b]);
/** The wire protocol version this package speaks. */
export const PROTOCOL_VERSION = 1;
/** Default largest frame body accepted: 8 MiB. */
export const DEFAULT_MAX_FRAME = 8 * 1024 * 1024;
/** The smallest frame limit a peer may announce. */
export const MIN_MAX_FRAME = 1024;
/** The length prefix's size. */
export const PREFIX_LEN = 4;
/** The credit in items every stream starts with (`STREAM_WINDOW_ITEMS` in Rust). */
export const STREAM_WINDOW_ITEMS = 1024;
/** The credit in bytes (of item frame bodies) every stream starts with: 256 KiB. */
export const STREAM_WINDOW_BYTES = 256 * 1024;

/** A request failed on the peer, as sent in a `Failure` frame. */
export type RemoteError =
  | { kind: "NoHandler"; event: string }
  | { kind: "NotARequest"; event: string }
  | { kind: "HandlerPanicked"; message: string }
  | { kind: "BadRequest"; message: string }
  | { kind: "ResponseTooLarge"; size: bigint; max: bigint }
  | { kind: "Encode"; message: string }
  | { kind: "HandlerFailed"; message: string }
  | { kind: "StreamProtocol"; message: string }
  | { kind: "Unknown"; index: number };

export interface Hello {
  kind: "Hello";
  magic: Uint8Array;
  version: number;
  sends: bigint;
  receives: bigint;
  maxFrame: number;
  lenient: boolean;
  auth: Uint8Array | null;
}

/** A frame's header: its kind and fields. */
export type Header =
  | Hello
  | { kind: "Welcome"; id: bigint; maxFrame: number }
  | { kind: "Reject"; reason: RejectReason }
  | { kind: "Event" }
  | { kind: "Request"; id: bigint; timeoutMs: number }
  | { kind: "Response"; id: bigint }
  | { kind: "Failure"; id: bigint; error: RemoteError }
  | { kind: "Cancel"; id: bigint }
  | { kind: "Ping" }
  | { kind: "Pong" }
  | { kind: "Close"; reason: CloseReason }
  // Streams: this package consumes them (`requestStream`) but serves none.
  | { kind: "StreamItem"; id: bigint }
  | { kind: "StreamEnd"; id: bigint; error: RemoteError | null }
  | { kind: "Credit"; id: bigint; items: number; bytes: bigint }
  // Recoverable sessions: only sent to a peer that asked for one, which
  // this package never does.
  | { kind: "Ack"; received: bigint }
  | { kind: "Volatile" }
  // Upload streams (the caller's items to the handler): this package sends
  // none and serves none, but knows their frames.
  | { kind: "UploadItem"; id: bigint }
  | { kind: "UploadEnd"; id: bigint; error: RemoteError | null }
  | { kind: "UploadCredit"; id: bigint; items: number; bytes: bigint };

const KINDS = [
  "Hello",
  "Welcome",
  "Reject",
  "Event",
  "Request",
  "Response",
  "Failure",
  "Cancel",
  "Ping",
  "Pong",
  "Close",
  "StreamItem",
  "StreamEnd",
  "Credit",
  "Ack",
  "Volatile",
  "UploadItem",
  "UploadEnd",
  "UploadCredit",
] as const;

const REJECTS = [
  "BadMagic",
  "VersionMismatch",
  "SchemaMismatch",
  "Other",
  "Refused",
  "HandshakeTimeout",
  "FrameLimitTooSmall",
  "SchemaDiffers",
] as const;
const REMOTE_ERRORS = [
  "NoHandler",
  "NotARequest",
  "HandlerPanicked",
  "BadRequest",
  "ResponseTooLarge",
  "Encode",
  "HandlerFailed",
  "StreamProtocol",
] as const;
const CLOSES = ["Normal", "FrameTooLarge", "Protocol", "Shutdown", "Application"] as const;

function indexOf(list: readonly string[], kind: string): number {
  const i = list.indexOf(kind);
  if (i < 0) throw new Error(`cannot encode the unknown variant ${kind}`);
  return i;
}

/** Writes `header` (not the payload, not the prefix). */
export function encodeHeader(h: Header, w: Writer): void {
  w.varint(indexOf(KINDS, h.kind));
  switch (h.kind) {
    case "Hello":
      w.raw(h.magic);
      w.varint(h.version);
      w.varint(h.sends);
      w.varint(h.receives);
      w.varint(h.maxFrame);
      w.byte(h.lenient ? 1 : 0);
      if (h.auth === null) w.byte(0);
      else {
        w.byte(1);
        w.bytesWithLen(h.auth);
      }
      return;
    case "Welcome":
      w.varint(h.id);
      w.varint(h.maxFrame);
      return;
    case "Reject": {
      const r = h.reason;
      w.varint(indexOf(REJECTS, r.kind));
      switch (r.kind) {
        case "VersionMismatch":
          w.varint(r.server);
          w.varint(r.client);
          return;
        case "SchemaMismatch":
        case "SchemaDiffers":
          r.server.forEach((id) => w.varint(id));
          r.client.forEach((id) => w.varint(id));
          if (r.kind === "SchemaDiffers") r.serverSchema.forEach((s) => w.string(s));
          return;
        case "Other":
        case "Refused":
          w.string(r.message);
          return;
        case "HandshakeTimeout":
          w.varint(r.afterMs);
          return;
        case "FrameLimitTooSmall":
          w.varint(r.maxFrame);
          w.varint(r.min);
          return;
        default:
          return;
      }
    }
    case "Request":
      w.varint(h.id);
      w.varint(h.timeoutMs);
      return;
    case "Response":
    case "Cancel":
      w.varint(h.id);
      return;
    case "Failure":
      w.varint(h.id);
      encodeRemoteError(h.error, w);
      return;
    case "StreamItem":
    case "UploadItem":
      w.varint(h.id);
      return;
    case "StreamEnd":
    case "UploadEnd":
      w.varint(h.id);
      if (h.error === null) w.byte(0);
      else {
        w.byte(1);
        encodeRemoteError(h.error, w);
      }
      return;
    case "Credit":
    case "UploadCredit":
      w.varint(h.id);
      w.varint(h.items);
      w.varint(h.bytes);
      return;
    case "Ack":
      w.varint(h.received);
      return;
    case "Close": {
      const c = h.reason;
      w.varint(indexOf(CLOSES, c.kind));
      if (c.kind === "FrameTooLarge") {
        w.varint(c.size);
        w.varint(c.max);
      } else if (c.kind !== "Normal" && c.kind !== "Unknown") w.string(c.message);
      return;
    }
    default:
      return;
  }
}

function encodeRemoteError(e: RemoteError, w: Writer): void {
  w.varint(indexOf(REMOTE_ERRORS, e.kind));
  if (e.kind === "NoHandler" || e.kind === "NotARequest") w.string(e.event);
  else if (e.kind === "ResponseTooLarge") {
    w.varint(e.size);
    w.varint(e.max);
  } else if (e.kind !== "Unknown") w.string(e.message);
}

function decodeRemoteError(r: Reader): RemoteError {
  const index = r.varint32();
  const k = REMOTE_ERRORS[index];
  if (k === "NoHandler" || k === "NotARequest") return { kind: k, event: r.string() };
  if (k === "ResponseTooLarge") return { kind: k, size: r.varintBig(64), max: r.varintBig(64) };
  if (k === undefined) return { kind: "Unknown", index };
  return { kind: k, message: r.string() };
}

/** A whole frame: the prefix, the header, the payload. */
export function encodeFrame(h: Header, payload?: Uint8Array): Uint8Array {
  const w = new Writer();
  w.raw(new Uint8Array(PREFIX_LEN));
  encodeHeader(h, w);
  if (payload) w.raw(payload);
  const bytes = w.bytes();
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, bytes.length - PREFIX_LEN);
  return bytes;
}

/** A decoded frame body. */
export interface Frame {
  header: Header;
  payload: Uint8Array;
}

/**
 * Splits a frame body into header and payload. Garbage, or a kind this
 * version does not know, is a `ProtocolError` saying so.
 */
export function decodeFrame(body: Uint8Array): Frame {
  const r = new Reader(body);
  try {
    const header = decodeHeader(r);
    return { header, payload: body.subarray(r.offset) };
  } catch (e) {
    if (e instanceof DecodeError) throw new ProtocolError(`undecodable frame header: ${e.message}`);
    throw e;
  }
}

function decodeHeader(r: Reader): Header {
  const tag = r.varint32();
  const kind = KINDS[tag];
  switch (kind) {
    case "Hello":
      return {
        kind,
        magic: r.raw(4, "the magic"),
        version: r.varint32(16),
        sends: r.varintBig(64),
        receives: r.varintBig(64),
        maxFrame: r.varint32(),
        lenient: bool(r),
        auth: bool(r) ? new Uint8Array(r.bytesWithLen()) : null,
      };
    case "Welcome":
      return { kind, id: r.varintBig(64), maxFrame: r.varint32() };
    case "Reject":
      return { kind, reason: decodeReject(r) };
    case "Event":
    case "Ping":
    case "Pong":
    case "Volatile":
      return { kind };
    case "StreamItem":
    case "UploadItem":
      return { kind, id: r.varintBig(64) };
    case "StreamEnd":
    case "UploadEnd": {
      const id = r.varintBig(64);
      return { kind, id, error: bool(r) ? decodeRemoteError(r) : null };
    }
    case "Credit":
    case "UploadCredit":
      return { kind, id: r.varintBig(64), items: r.varint32(), bytes: r.varintBig(64) };
    case "Ack":
      return { kind, received: r.varintBig(64) };
    case "Request":
      return { kind, id: r.varintBig(64), timeoutMs: r.varint32() };
    case "Response":
    case "Cancel":
      return { kind, id: r.varintBig(64) };
    case "Failure": {
      const id = r.varintBig(64);
      return { kind, id, error: decodeRemoteError(r) };
    }
    case "Close": {
      const index = r.varint32();
      const k = CLOSES[index];
      let reason: CloseReason;
      if (k === "Normal") reason = { kind: k };
      else if (k === "FrameTooLarge") reason = { kind: k, size: r.varintBig(64), max: r.varintBig(64) };
      else if (k === undefined) reason = { kind: "Unknown", index };
      else reason = { kind: k, message: r.string() };
      return { kind, reason };
    }
    default:
      throw new ProtocolError(
        `unknown frame kind ${tag} (this peer speaks protocol version ${PROTOCOL_VERSION} and knows kinds 0 to ${KINDS.length - 1})`,
      );
  }
}

function bool(r: Reader): boolean {
  const b = r.byte();
  if (b > 1) throw new DecodeError(`a bool byte is ${b}, not 0 or 1`);
  return b === 1;
}

function decodeReject(r: Reader): RejectReason {
  const index = r.varint32();
  const k = REJECTS[index];
  const pair = (): [bigint, bigint] => [r.varintBig(64), r.varintBig(64)];
  switch (k) {
    case "BadMagic":
      return { kind: k };
    case "VersionMismatch":
      return { kind: k, server: r.varint32(16), client: r.varint32(16) };
    case "SchemaMismatch":
      return { kind: k, server: pair(), client: pair() };
    case "SchemaDiffers":
      return { kind: k, server: pair(), client: pair(), serverSchema: [r.string(), r.string()] };
    case "Other":
    case "Refused":
      return { kind: k, message: r.string() };
    case "HandshakeTimeout":
      return { kind: k, afterMs: r.varintBig(64) };
    case "FrameLimitTooSmall":
      return { kind: k, maxFrame: r.varint32(), min: r.varint32() };
    default:
      return { kind: "Unknown", index };
  }
}

/**
 * Cuts a byte stream into frame bodies. A length over `max` is reported
 * (without buffering the body) so that the caller can close.
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before anything can be cut (a prefix, or the frame it announced). */
  private needed = PREFIX_LEN;

  constructor(public max: number) {}

  /** Adds bytes; returns the whole bodies now available, or the oversize length. */
  push(chunk: Buffer): { bodies: Uint8Array[]; tooLarge?: number } {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const bodies: Uint8Array[] = [];
    if (this.buffered < this.needed) return { bodies };
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    let offset = 0;
    this.needed = PREFIX_LEN;
    while (buf.length - offset >= PREFIX_LEN) {
      const len = buf.readUInt32BE(offset);
      if (len > this.max) return { bodies, tooLarge: len };
      if (buf.length - offset - PREFIX_LEN < len) {
        this.needed = PREFIX_LEN + len;
        break;
      }
      bodies.push(buf.subarray(offset + PREFIX_LEN, offset + PREFIX_LEN + len));
      offset += PREFIX_LEN + len;
    }
    buf = buf.subarray(offset);
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
    return { bodies };
  }
}
