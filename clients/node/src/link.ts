/**
 * A link: one `net.Socket` carrying frames, after or during the handshake.
 * It cuts the byte stream into frames, enforces both frame limits, closes
 * on garbage with a `Close(Protocol)`, and never lets a peer's bytes throw.
 */
import type { Socket as NetSocket } from "node:net";

import { FrameTooLargeError, ProtocolError, type CloseReason } from "./errors.js";
import { FrameSplitter, PREFIX_LEN, decodeFrame, encodeFrame, type Frame, type Header } from "./frames.js";

/** How long an orderly close keeps reading what the peer still sends. */
export const CLOSE_LINGER_MS = 2000;

/** Why a link ended. `close` is the peer's reason when it sent a `Close`. */
export interface LinkEnd {
  reason: string;
  close?: CloseReason;
  error?: Error;
}

export class Link {
  private readonly splitter: FrameSplitter;
  /** While set, a breach (garbage, an oversize frame) goes here instead of `Close`: the server's handshake answers `Reject(BadMagic)`. */
  onBreach: (() => void) | null = null;
  /** The largest body we send: the smaller of the peer's limit and ours. */
  sendMax: number;
  /** Called for each frame, in order; while null, frames are held for the next one set with `handle`. */
  onFrame: ((frame: Frame) => void) | null = null;
  /** Called once, when the link has ended; while null, the end is held too. */
  onEnd: ((end: LinkEnd) => void) | null = null;
  private held: Frame[] = [];
  private heldEnd: LinkEnd | null = null;
  /** When a byte last arrived (for the heartbeat). */
  lastReceived = Date.now();
  private ended = false;
  private closing = false;
  private endInfo: LinkEnd | null = null;

  constructor(
    readonly sock: NetSocket,
    public max: number,
    sendMax: number,
  ) {
    this.splitter = new FrameSplitter(max);
    this.sendMax = sendMax;
    sock.setNoDelay?.(true);
    sock.on("data", (chunk: Buffer) => this.receive(chunk));
    sock.on("error", (error) => this.finish({ reason: `transport error: ${error.message}`, error }));
    sock.on("end", () => {
      // The peer stopped writing: a hang-up, unless it sent `Close` first.
      if (!this.closing) this.finish({ reason: "the peer hung up without a Close frame" });
      sock.end();
    });
    sock.on("close", () => this.finish({ reason: "the connection closed" }));
  }

  get isOpen(): boolean {
    return !this.ended && !this.closing;
  }

  private receive(chunk: Buffer): void {
    if (this.ended) return;
    this.lastReceived = Date.now();
    const { bodies, tooLarge } = this.splitter.push(chunk);
    for (const body of bodies) {
      if (this.ended) return;
      let frame: Frame;
      try {
        frame = decodeFrame(body);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        this.fail(new ProtocolError(message), { kind: "Protocol", message });
        return;
      }
      if (frame.header.kind === "Close") {
        this.finish({ reason: "the peer closed the connection", close: frame.header.reason });
        this.sock.end();
        return;
      }
      this.deliver(frame);
    }
    if (tooLarge !== undefined) {
      const error = new FrameTooLargeError(tooLarge, this.max);
      this.fail(error, { kind: "FrameTooLarge", size: BigInt(tooLarge), max: BigInt(this.max) });
    }
  }

  private deliver(frame: Frame): void {
    if (!this.onFrame) {
      this.held.push(frame);
      return;
    }
    try {
      this.onFrame(frame);
    } catch (e) {
      // A bug of ours, not the peer's: end this connection, never the process.
      const message = `internal error handling a ${frame.header.kind} frame: ${(e as Error).message}`;
      this.fail(new ProtocolError(message), { kind: "Protocol", message });
    }
  }

  /** Sets the frame and end handlers, then hands them what arrived meanwhile. */
  handle(onFrame: (frame: Frame) => void, onEnd: (end: LinkEnd) => void): void {
    this.onFrame = onFrame;
    this.onEnd = onEnd;
    while (this.held.length > 0) {
      if (this.onFrame !== onFrame) return; // held again: the rest waits
      this.deliver(this.held.shift()!);
    }
    if (this.heldEnd) {
      const end = this.heldEnd;
      this.heldEnd = null;
      onEnd(end);
    }
  }

  /** Stops delivering frames (they are held) until `handle` is called again. */
  hold(): void {
    this.onFrame = null;
    this.onEnd = null;
  }

  /**
   * Sends a frame; a `FrameTooLargeError` (nothing sent) if its body is over
   * `sendMax`; false if the link is closed.
   */
  send(header: Header, payload?: Uint8Array): boolean {
    if (this.ended || this.closing) return false;
    const frame = encodeFrame(header, payload);
    const size = frame.length - PREFIX_LEN;
    if (size > this.sendMax) throw new FrameTooLargeError(size, this.sendMax);
    this.sock.write(frame);
    return true;
  }

  /** The limits once the handshake is done: ours for reading, the smaller of both for sending. */
  setLimits(max: number, sendMax: number): void {
    this.max = max;
    this.splitter.max = max;
    this.sendMax = sendMax;
  }

  /** Sends `Close(reason)` for a protocol breach and drops the link. */
  fail(error: Error, reason: CloseReason): void {
    if (this.ended) return;
    if (this.onBreach) {
      this.onBreach();
      return;
    }
    this.sendClose(reason);
    this.finish({ reason: error.message, error });
    this.sock.destroy();
  }

  private sendClose(reason: CloseReason): void {
    if (this.ended || this.closing) return;
    try {
      this.send({ kind: "Close", reason: fitClose(reason, this.sendMax) });
    } catch {
      // Too large even when shortened: close without it.
    }
    this.closing = true;
  }

  /**
   * An orderly close: `Close(reason)`, stop writing, keep reading for up to
   * `CLOSE_LINGER_MS` or until the peer hangs up. Resolves when closed.
   */
  close(reason: CloseReason = { kind: "Normal" }, end: LinkEnd = { reason: "closed by this side" }): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended || this.sock.destroyed) {
        this.finish(end);
        resolve();
        return;
      }
      this.endInfo = end;
      this.sock.once("close", () => resolve());
      this.sendClose(reason);
      this.sock.end();
      const timer = setTimeout(() => this.sock.destroy(), CLOSE_LINGER_MS);
      timer.unref();
    });
  }

  /** Drops the link without a `Close`. */
  destroy(end: LinkEnd): void {
    this.finish(end);
    this.sock.destroy();
  }

  private finish(end: LinkEnd): void {
    if (this.ended) return;
    this.ended = true;
    const info = this.endInfo ?? end;
    if (this.onEnd) this.onEnd(info);
    else this.heldEnd = info;
  }
}

/** A close reason whose text is shortened (ending in `…`) to fit `max`. */
function fitClose(reason: CloseReason, max: number): CloseReason {
  if (!("message" in reason)) return reason;
  const room = Math.max(0, max - 16);
  if (Buffer.byteLength(reason.message) <= room) return reason;
  let message = reason.message;
  while (Buffer.byteLength(message) + 3 > room && message.length > 0) message = [...message].slice(0, -1).join("");
  return { ...reason, message: message + "…" };
}
