/**
 * A netsock socket: one side of a connection after the handshake. Emits
 * events and makes requests by variant name, dispatches the peer's to
 * handlers registered with `on`, answers `Ping`, sends its own and drops a
 * dead peer. The client (`connect`) and the server's connections are both
 * a `Socket`; a client's socket also reconnects.
 */
import {
  BadRequestError,
  CallError,
  CallFrameTooLargeError,
  CancelledError,
  DisconnectedError,
  EncodeError,
  FrameTooLargeError,
  HandlerFailedError,
  HandlerPanickedError,
  NetsockError,
  NoHandlerError,
  NotARequestError,
  ProtocolError,
  ResponseTooLargeError,
  StreamProtocolError,
  TimeoutError,
  describeClose,
  type CloseReason,
} from "./errors.js";
import { DEFAULT_MAX_FRAME, type Frame, type RemoteError } from "./frames.js";
import type { Link, LinkEnd } from "./link.js";
import type { AnyEvents, EventMap, EventVariant, Schema } from "./schema.js";
import { ItemStream } from "./stream.js";

type IsAny<T> = 0 extends 1 & T ? true : false;

/** The variants of `E` that are events (not requests). */
export type EventNames<E extends EventMap> = {
  [K in keyof E & string]: E[K]["request"] extends true ? never : K;
}[keyof E & string];

/**
 * Whether variant spec `S` has the key `Key` (`stream`, `upload`) with a
 * type: "yes", "no" (absent or `never`), or "any" (an untyped schema).
 */
type Carries<S, Key extends string> = S extends { [P in Key]: infer T }
  ? IsAny<T> extends true
    ? "any"
    : [T] extends [never]
      ? "no"
      : "yes"
  : "no";

/** The variants of `E` that are requests answered with one reply (`request`). */
export type RequestNames<E extends EventMap> = {
  [K in keyof E & string]: E[K]["request"] extends false
    ? never
    : Carries<E[K], "stream"> extends "yes"
      ? never
      : Carries<E[K], "upload"> extends "yes"
        ? never
        : K;
}[keyof E & string];

/** The variants of `E` that are stream requests (`requestStream`). */
export type StreamNames<E extends EventMap> = {
  [K in keyof E & string]: Carries<E[K], "stream"> extends "no" ? never : Carries<E[K], "upload"> extends "yes" ? never : K;
}[keyof E & string];

/** The variants of `E` this package can handle with `on`: events and plain requests (not streams, not uploads). */
export type HandledNames<E extends EventMap> = {
  [K in keyof E & string]: Carries<E[K], "stream"> extends "yes" ? never : Carries<E[K], "upload"> extends "yes" ? never : K;
}[keyof E & string];

/** The item type of stream request spec `S`. */
export type StreamItemOf<S> = S extends { stream: infer T } ? T : unknown;

/** The arguments after the variant name: none for a unit variant, else the payload (optional for an untyped schema). */
export type PayloadArgs<P> = IsAny<P> extends true ? [payload?: P] : [P] extends [undefined] ? [] : [payload: P];

/** What a handler may return: for a request, its reply (or a promise of it). */
export type HandlerResult<S extends EventMap[string]> = S["request"] extends true
  ? S["response"] | Promise<S["response"]>
  : void | Promise<void>;

/** What a handler is given besides the payload. */
export interface HandlerContext<E extends EventMap> {
  /** The socket the event or request arrived on. */
  socket: Socket<E>;
  /** For a request: aborted when the caller cancels it or the connection ends. */
  signal: AbortSignal;
  /** For a request: how long the caller waits, in ms (0: no deadline). */
  timeoutMs: number;
}

/** A handler for variant `K`. */
export type Handler<E extends EventMap, K extends keyof E & string> = (
  payload: E[K]["payload"],
  ctx: HandlerContext<E>,
) => HandlerResult<E[K]>;

/** Per-call options. */
export interface CallOptions {
  /**
   * Give up (and send `Cancel`) after this many ms; 0: wait for ever.
   * Default: the socket's `requestTimeoutMs`. For `requestStream`, the
   * wait for the first item (or the end); later items may take longer.
   */
  timeoutMs?: number;
  /** Give up (and send `Cancel`) when this signal aborts. */
  signal?: AbortSignal;
  /**
   * `requestStream` only: give up (and send `Cancel`) when the reader has
   * waited this many ms for an item after the first; 0 (the default): no
   * limit. A reader that is slow itself never times out.
   */
  idleTimeoutMs?: number;
}

/** A socket's settings. Every field has a default. */
export interface SocketOptions {
  /** The largest frame body accepted, announced in the handshake (default 8 MiB, at least 1024). */
  maxFrame?: number;
  /** Default timeout of a request, in ms (default 30000; 0: none). */
  requestTimeoutMs?: number;
  /** Send a `Ping` when nothing arrived for this long, in ms (default 25000). */
  heartbeatIntervalMs?: number;
  /** Drop the peer when nothing arrives this long after a `Ping`, in ms (default 20000). */
  heartbeatTimeoutMs?: number;
}

/** Why a socket's connection ended. */
export interface DisconnectInfo {
  /** In words. */
  reason: string;
  /** The peer's `Close` reason, when it sent one. */
  close?: CloseReason;
  /** The error that ended it (a `ProtocolError`, a transport error...), if any. */
  error?: Error;
}

/** A handler as stored: payload and result unchecked (`on` checked them). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (payload: unknown, ctx: HandlerContext<any>) => unknown;

interface Pending {
  variant: EventVariant;
  resolve: (value: unknown) => void;
  reject: (error: CallError) => void;
  cleanup: () => void;
}

const DEFAULTS = {
  maxFrame: DEFAULT_MAX_FRAME,
  requestTimeoutMs: 30_000,
  heartbeatIntervalMs: 25_000,
  heartbeatTimeoutMs: 20_000,
};

/** Settings with defaults filled in. */
export type ResolvedOptions = typeof DEFAULTS;

export function resolveOptions(options: SocketOptions = {}): ResolvedOptions {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof ResolvedOptions)[]) {
    const v = options[key];
    if (v !== undefined) out[key] = v;
  }
  out.maxFrame = Math.max(1024, Math.min(out.maxFrame, 0xffffffff));
  return out;
}

export class Socket<E extends EventMap = AnyEvents> {
  /** The connection's id, assigned by the server (changes when a client reconnects). */
  id = 0n;
  private link: Link | null = null;
  private readonly handlers = new Map<string, AnyHandler>();
  private readonly pending = new Map<bigint, Pending>();
  private readonly incoming = new Map<bigint, AbortController>();
  private readonly streams = new Map<bigint, ItemStream<unknown>>();
  private nextId = 1n;
  private heartbeat: NodeJS.Timeout | null = null;
  private pingSentAt: number | null = null;
  private readonly disconnectListeners: ((info: DisconnectInfo) => void)[] = [];
  private readonly connectListeners: (() => void)[] = [];
  private readonly errorListeners: ((error: Error) => void)[] = [];
  /** Set by the client when it reconnects; see `client.ts`. */
  protected onLinkEnd: ((info: DisconnectInfo) => void) | null = null;
  /** Whether `close()` was called: nothing reconnects after it. */
  protected closedByUser = false;

  constructor(
    readonly schema: Schema<E>,
    readonly options: ResolvedOptions,
  ) {}

  /** Whether the socket is connected now. */
  get connected(): boolean {
    return this.link?.isOpen ?? false;
  }

  /**
   * Handles variant `name` from the peer: an event (return nothing) or a
   * request (return the reply, or a promise of it; a throw becomes the
   * caller's `HandlerPanicked`). Replaces an earlier handler for it.
   */
  on<K extends HandledNames<E>>(name: K, handler: Handler<E, K>): this {
    const variant = this.schema.variant(name);
    if (variant.stream) throw new NetsockError(`${name} is a stream request, which this package does not serve`);
    if (variant.upload) throw new NetsockError(`${name} carries an upload stream, which this package does not serve`);
    this.handlers.set(name, handler as unknown as AnyHandler);
    return this;
  }

  /** Removes the handler for `name`. */
  off<K extends keyof E & string>(name: K): this {
    this.handlers.delete(name);
    return this;
  }

  /** Resolves with the next `name` event's payload. */
  once<K extends EventNames<E>>(name: K, options: { signal?: AbortSignal } = {}): Promise<E[K]["payload"]> {
    return new Promise((resolve, reject) => {
      const previous = this.handlers.get(name);
      const onAbort = () => {
        restore();
        reject(new CancelledError());
      };
      const restore = () => {
        options.signal?.removeEventListener("abort", onAbort);
        if (previous) this.handlers.set(name, previous);
        else this.handlers.delete(name);
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.handlers.set(name, (payload, ctx) => {
        restore();
        resolve(payload as E[K]["payload"]);
        return previous?.(payload, ctx);
      });
    });
  }

  /** Called when the connection ends (for a client, before each reconnection attempt). */
  onDisconnect(listener: (info: DisconnectInfo) => void): this {
    this.disconnectListeners.push(listener);
    return this;
  }

  /** Called when a client has reconnected. */
  onReconnect(listener: () => void): this {
    this.connectListeners.push(listener);
    return this;
  }

  /**
   * Called with what the socket cannot deliver (an undecodable event, one
   * without a handler, a handler's exception). Without a listener these go
   * to `console.warn`.
   */
  onError(listener: (error: Error) => void): this {
    this.errorListeners.push(listener);
    return this;
  }

  /** Sends event `name`; rejects with a `ValueError` if the payload does not fit the schema. */
  async emit<K extends EventNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): Promise<void> {
    const variant = this.schema.variant(name);
    if (variant.request) {
      throw new NetsockError(`${name} is a request variant: call it with request()`);
    }
    const payload = this.schema.encodeVariant(name, args[0]);
    const link = this.link;
    if (!link?.isOpen) throw new DisconnectedError("the socket is not connected");
    link.send({ kind: "Event" }, payload);
  }

  /** Calls request variant `name` and resolves with the peer's reply, or rejects with a `CallError`. */
  request<K extends RequestNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): Promise<E[K]["response"]> {
    return this.call(name, args[0], {});
  }

  /**
   * Sends stream request `name` and returns its items as an async iterator
   * (see {@link ItemStream}): `for await (const n of socket.requestStream("Count", 5n))`.
   * The request goes at once; the peer's refusal, a disconnect and the
   * timeout (`requestTimeoutMs`, or `with({ timeoutMs })`: the wait for the
   * first item) reject the iteration with a `CallError`. A payload that
   * does not fit the schema, or a variant that is not a stream request,
   * throws here.
   */
  requestStream<K extends StreamNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): ItemStream<StreamItemOf<E[K]>> {
    return this.openStream(name, args[0], {}) as ItemStream<StreamItemOf<E[K]>>;
  }

  /** The same socket, whose `request` and `requestStream` use these options: `socket.with({ timeoutMs: 100 }).request(...)`. */
  with(options: CallOptions): Caller<E> {
    return {
      request: <K extends RequestNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>) =>
        this.call(name, args[0], options) as Promise<E[K]["response"]>,
      requestStream: <K extends StreamNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>) =>
        this.openStream(name, args[0], options) as ItemStream<StreamItemOf<E[K]>>,
    };
  }

  /** Shorthand for `with({ timeoutMs })`. */
  timeout(timeoutMs: number): Caller<E> {
    return this.with({ timeoutMs });
  }

  private async call(name: string, payloadValue: unknown, options: CallOptions): Promise<never> {
    const variant = this.schema.variant(name);
    if (!variant.request) throw new NotARequestError(name);
    if (variant.upload) throw new NetsockError(uploadRefusal(name));
    if (variant.stream) throw new NetsockError(`${name} answers with a stream: consume it with requestStream()`);
    const payload = this.schema.encodeVariant(name, payloadValue);
    const link = this.link;
    if (!link?.isOpen) throw new DisconnectedError("the socket is not connected");
    if (options.signal?.aborted) throw new CancelledError();
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    const id = this.nextId++;
    return new Promise<never>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const giveUp = (error: CallError) => {
        if (!this.pending.has(id)) return;
        this.pending.get(id)!.cleanup();
        this.pending.delete(id);
        try {
          link.send({ kind: "Cancel", id });
        } catch {
          // closed meanwhile
        }
        reject(error);
      };
      const onAbort = () => giveUp(new CancelledError());
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      this.pending.set(id, { variant, resolve: resolve as (v: unknown) => void, reject, cleanup });
      try {
        link.send({ kind: "Request", id, timeoutMs: Math.min(timeoutMs, 0xffffffff) }, payload);
      } catch (e) {
        cleanup();
        this.pending.delete(id);
        if (e instanceof FrameTooLargeError) reject(new CallFrameTooLargeError(e.size, e.max));
        else reject(e);
        return;
      }
      // setTimeout fires at once beyond 2^31-1 ms (24.8 days): such a deadline is none.
      if (timeoutMs > 0 && timeoutMs <= 0x7fffffff) timer = setTimeout(() => giveUp(new TimeoutError(timeoutMs)), timeoutMs);
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private openStream(name: string, payloadValue: unknown, options: CallOptions): ItemStream<unknown> {
    const variant = this.schema.variant(name);
    if (variant.upload) throw new NetsockError(uploadRefusal(name));
    if (!variant.stream) {
      const what = variant.request ? "a request answered with one reply: call it with request()" : "an event: emit it";
      throw new NetsockError(`${name} is not a stream request; it is ${what}`);
    }
    const payload = this.schema.encodeVariant(name, payloadValue);
    const link = this.link;
    const id = this.nextId++;
    const forget = () => {
      if (this.streams.get(id) === stream) this.streams.delete(id);
    };
    const stream: ItemStream<unknown> = new ItemStream(
      id,
      name,
      {
        credit: (items, bytes) => {
          link?.send({ kind: "Credit", id, items, bytes: BigInt(bytes) });
        },
        cancel: () => {
          forget();
          link?.send({ kind: "Cancel", id });
        },
        forget,
        decode: (bytes) => this.schema.decodeItem(variant, bytes),
        report: (error) => this.report(error),
      },
      options.idleTimeoutMs ?? 0,
    );
    if (!link?.isOpen) {
      stream.finish(new DisconnectedError("the socket is not connected"));
      return stream;
    }
    if (options.signal?.aborted) {
      stream.finish(new CancelledError());
      return stream;
    }
    this.streams.set(id, stream);
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    try {
      link.send({ kind: "Request", id, timeoutMs: Math.min(timeoutMs, 0xffffffff) }, payload);
    } catch (e) {
      if (e instanceof FrameTooLargeError) stream.finish(new CallFrameTooLargeError(e.size, e.max));
      else stream.finish(new DisconnectedError((e as Error).message));
      return stream;
    }
    stream.setFirstItemTimeout(timeoutMs);
    const signal = options.signal;
    if (signal) {
      const onAbort = () => stream.failAndCancel(new CancelledError());
      signal.addEventListener("abort", onAbort, { once: true });
      stream.onEnded(() => signal.removeEventListener("abort", onAbort));
    }
    return stream;
  }

  /** Closes the connection in order (`Close(Normal)`); a client does not reconnect after it. */
  async close(): Promise<void> {
    this.closedByUser = true;
    await this.link?.close({ kind: "Normal" }, { reason: "closed by this side" });
  }

  /** Closes with another reason (`Shutdown`, `Application`...). */
  async closeWith(reason: CloseReason, words: string): Promise<void> {
    this.closedByUser = true;
    await this.link?.close(reason, { reason: words });
  }

  /**
   * Takes over a link whose handshake is done. With `defer`, frames wait
   * for the next turn of the event loop, so that handlers registered right
   * after `await connect(...)` see the first events.
   */
  protected attach(link: Link, id: bigint, defer = false): void {
    this.link = link;
    this.id = id;
    this.pingSentAt = null;
    this.scheduleHeartbeat(link);
    const handle = () =>
      link.handle(
        (frame) => this.dispatch(link, frame),
        (end) => this.detached(link, end),
      );
    if (defer) setImmediate(handle);
    else handle();
  }

  protected notifyReconnect(): void {
    for (const l of this.connectListeners) this.safely(() => l());
  }

  private detached(link: Link, end: LinkEnd): void {
    if (this.link !== link) return;
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = null;
    const reason = end.close ? `${end.reason}: ${describeClose(end.close)}` : end.reason;
    for (const [id, p] of this.pending) {
      p.cleanup();
      p.reject(new DisconnectedError(reason));
      this.pending.delete(id);
    }
    for (const controller of this.incoming.values()) controller.abort();
    this.incoming.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const stream of streams) stream.finish(new DisconnectedError(reason));
    const info: DisconnectInfo = { reason, ...(end.close && { close: end.close }), ...(end.error && { error: end.error }) };
    for (const l of this.disconnectListeners) this.safely(() => l(info));
    this.onLinkEnd?.(info);
  }

  private scheduleHeartbeat(link: Link): void {
    const { heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout } = this.options;
    const tick = () => {
      if (this.link !== link || !link.isOpen) return;
      const now = Date.now();
      if (this.pingSentAt !== null && link.lastReceived < this.pingSentAt) {
        if (now - this.pingSentAt >= timeout) {
          link.destroy({ reason: `no answer from the peer within ${timeout} ms of a Ping (heartbeat timeout)` });
          return;
        }
        this.heartbeat = setTimeout(tick, this.pingSentAt + timeout - now).unref();
        return;
      }
      const quiet = now - link.lastReceived;
      if (quiet >= interval) {
        this.pingSentAt = now;
        link.send({ kind: "Ping" });
        this.heartbeat = setTimeout(tick, timeout).unref();
      } else {
        this.pingSentAt = null;
        this.heartbeat = setTimeout(tick, interval - quiet).unref();
      }
    };
    this.heartbeat = setTimeout(tick, interval).unref();
  }

  private report(error: Error): void {
    if (this.errorListeners.length === 0) console.warn(`netsock: ${error.message}`);
    for (const l of this.errorListeners) {
      try {
        l(error);
      } catch (e) {
        console.error("netsock: an onError listener threw", e);
      }
    }
  }

  /** Runs a user's listener; what it throws is reported, never thrown into the event loop. */
  private safely(listener: () => void): void {
    try {
      listener();
    } catch (e) {
      this.report(asError(e, "a listener failed"));
    }
  }

  private dispatch(link: Link, frame: Frame): void {
    const h = frame.header;
    switch (h.kind) {
      case "Ping":
        link.send({ kind: "Pong" });
        return;
      case "Pong":
        return;
      case "Event":
      case "Volatile":
        this.onEvent(frame.payload);
        return;
      case "Request":
        this.onRequest(link, h.id, h.timeoutMs, frame.payload);
        return;
      case "Response":
      case "Failure": {
        const p = this.pending.get(h.id);
        if (!p) {
          const stream = this.streams.get(h.id);
          if (!stream) return; // cancelled or timed out: ignored
          if (h.kind === "Response") stream.accept(); // an empty Response accepts the stream
          else stream.finish(remoteError(h.error)); // refused
          return;
        }
        this.pending.delete(h.id);
        p.cleanup();
        if (h.kind === "Failure") {
          p.reject(remoteError(h.error));
          return;
        }
        try {
          p.resolve(this.schema.decodeResponse(p.variant, frame.payload));
        } catch (e) {
          p.reject(new BadRequestError(`the reply to ${p.variant.name} could not be decoded: ${(e as Error).message}`));
        }
        return;
      }
      case "Cancel":
        this.incoming.get(h.id)?.abort();
        this.incoming.delete(h.id);
        return;
      case "StreamItem":
        // Its frame body: the tag (one byte), the id, the payload. An id
        // with no open stream (ended, cancelled) is ignored.
        this.streams.get(h.id)?.push(frame.payload, 1 + varintLength(h.id) + frame.payload.length);
        return;
      case "StreamEnd":
        this.streams.get(h.id)?.finish(h.error ? remoteError(h.error) : null);
        return;
      case "Credit":
        return; // this side serves no streams
      case "UploadItem":
      case "UploadEnd":
      case "UploadCredit":
        // This side neither sends nor serves uploads: an upload request is
        // answered NoHandler, and what follows it for that id is ignored.
        return;
      default: {
        const message = `unexpected ${h.kind} frame after the handshake`;
        link.fail(new ProtocolError(message), { kind: "Protocol", message });
      }
    }
  }

  private onEvent(bytes: Uint8Array): void {
    let decoded;
    try {
      decoded = this.schema.decodeVariant(bytes);
    } catch (e) {
      this.report(new ProtocolError(`dropped an undecodable event: ${(e as Error).message}`));
      return;
    }
    const { variant, payload } = decoded;
    if (variant.request) {
      this.report(new ProtocolError(`dropped an Event frame carrying the request variant ${variant.name}`));
      return;
    }
    const handler = this.handlers.get(variant.name);
    if (!handler) {
      this.report(new NetsockError(`dropped event ${variant.name}: no handler`));
      return;
    }
    const ctx = { socket: this, signal: new AbortController().signal, timeoutMs: 0 };
    try {
      const result = handler(payload, ctx);
      if (result instanceof Promise) {
        result.catch((e: unknown) => this.report(asError(e, `the ${variant.name} handler failed`)));
      }
    } catch (e) {
      this.report(asError(e, `the ${variant.name} handler failed`));
    }
  }

  private onRequest(link: Link, id: bigint, timeoutMs: number, bytes: Uint8Array): void {
    const fail = (error: RemoteError) => {
      try {
        link.send({ kind: "Failure", id, error: fitRemote(error, link.sendMax) });
      } catch {
        // gone meanwhile
      }
    };
    let decoded;
    try {
      decoded = this.schema.decodeVariant(bytes);
    } catch (e) {
      fail({ kind: "BadRequest", message: (e as Error).message });
      return;
    }
    const { variant, payload } = decoded;
    if (!variant.request) {
      fail({ kind: "NotARequest", event: variant.name });
      return;
    }
    if (variant.stream || variant.upload) {
      // This package serves no streams and takes no uploads; the upload's
      // items that follow are ignored (see `dispatch`).
      fail({ kind: "NoHandler", event: variant.name });
      return;
    }
    const handler = this.handlers.get(variant.name);
    if (!handler) {
      fail({ kind: "NoHandler", event: variant.name });
      return;
    }
    // A reused id cancels the request still running under it.
    this.incoming.get(id)?.abort();
    const controller = new AbortController();
    this.incoming.set(id, controller);
    const ctx = { socket: this, signal: controller.signal, timeoutMs };
    const finish = (send: () => void) => {
      if (controller.signal.aborted || this.incoming.get(id) !== controller) return;
      this.incoming.delete(id);
      send();
    };
    const reply = (value: unknown) =>
      finish(() => {
        let bytes: Uint8Array;
        try {
          bytes = this.schema.encodeResponse(variant, value);
        } catch (e) {
          this.report(asError(e, `the ${variant.name} handler's reply does not fit the schema`));
          fail({ kind: "Encode", message: (e as Error).message });
          return;
        }
        try {
          link.send({ kind: "Response", id }, bytes);
        } catch (e) {
          if (e instanceof FrameTooLargeError) {
            fail({ kind: "ResponseTooLarge", size: BigInt(e.size), max: BigInt(e.max) });
          }
        }
      });
    const panicked = (e: unknown) =>
      finish(() => {
        const error = asError(e, `the ${variant.name} handler failed`);
        this.report(error);
        fail({ kind: "HandlerPanicked", message: error.message });
      });
    try {
      const result = handler(payload, ctx);
      if (result instanceof Promise) result.then(reply, panicked);
      else reply(result);
    } catch (e) {
      panicked(e);
    }
  }
}

/** A socket with call options set: see {@link Socket.with}. */
export interface Caller<E extends EventMap> {
  request<K extends RequestNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): Promise<E[K]["response"]>;
  requestStream<K extends StreamNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): ItemStream<StreamItemOf<E[K]>>;
}

function uploadRefusal(name: string): string {
  return `${name} carries an upload stream from the caller, which this package does not send`;
}

function varintLength(n: bigint): number {
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

function remoteError(e: RemoteError): CallError {
  switch (e.kind) {
    case "NoHandler":
      return new NoHandlerError(e.event);
    case "NotARequest":
      return new NotARequestError(e.event);
    case "HandlerPanicked":
      return new HandlerPanickedError(e.message);
    case "BadRequest":
      return new BadRequestError(e.message);
    case "ResponseTooLarge":
      return new ResponseTooLargeError(e.size, e.max);
    case "Encode":
      return new EncodeError(e.message);
    case "HandlerFailed":
      return new HandlerFailedError(e.message);
    case "StreamProtocol":
      return new StreamProtocolError(e.message);
    case "Unknown":
      return new CallError("HandlerPanicked", `the peer failed the request with an error this version does not know (variant ${e.index})`);
  }
}

function fitRemote(e: RemoteError, max: number): RemoteError {
  if (!("message" in e)) return e;
  const room = Math.max(0, max - 32);
  if (Buffer.byteLength(e.message) <= room) return e;
  return { ...e, message: Buffer.from(e.message).subarray(0, room - 3).toString().replace(/\uFFFD$/, "") + "…" };
}

function asError(e: unknown, context: string): Error {
  return e instanceof Error ? e : new NetsockError(`${context}: ${String(e)}`);
}
