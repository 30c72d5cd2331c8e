/**
 * Consuming a stream the peer sends: the answer to a stream request (a
 * variant whose schema JSON entry has a `stream` item type).
 *
 * `socket.requestStream(name, payload)` sends the `Request` and returns an
 * {@link ItemStream} at once: an async iterator of the `StreamItem` frames'
 * items, in order, until `StreamEnd`. The peer accepts the stream with an
 * empty `Response`, or refuses it with a `Failure`, whose error the first
 * `next()` rejects with.
 *
 * Flow control is the protocol's credit (the book's "Wire protocol",
 * section Streams): the sender starts with {@link STREAM_WINDOW_ITEMS}
 * items and {@link STREAM_WINDOW_BYTES} bytes, and this side grants back
 * what its reader has read (a `Credit` frame) each time that reaches half
 * the window, as netsock does. So the peer is never more than a window
 * ahead of the reader, and at most a window of items waits here. An item
 * beyond the credit ends the stream with a `StreamProtocol` error and a
 * `Cancel`.
 */
import { BadRequestError, NetsockError, StreamProtocolError, TimeoutError, type CallError } from "./errors.js";
import { STREAM_WINDOW_BYTES, STREAM_WINDOW_ITEMS } from "./frames.js";

/** What a stream asks of the socket it came on (the link it was opened on). */
export interface StreamHost {
  /** Sends `Credit { id, items, bytes }`. */
  credit(items: number, bytes: number): void;
  /** Sends `Cancel { id }`; the socket forgets the stream. */
  cancel(): void;
  /** The socket forgets the stream (it ended), sending nothing. */
  forget(): void;
  /** Decodes one item (a `DecodeError` if it does not fit the schema). */
  decode(payload: Uint8Array): unknown;
  /** Reports what a listener threw. */
  report(error: Error): void;
}

interface Waiter<T> {
  resolve: (result: IteratorResult<T, undefined>) => void;
  reject: (error: unknown) => void;
}

/**
 * The items of one stream, as an async iterator:
 *
 * ```ts
 * for await (const n of socket.requestStream("Count", 5n)) console.log(n);
 * ```
 *
 * The iteration ends when the peer ends the stream. A stream that failed
 * rejects once, after the items that came before the failure, with its
 * `CallError`: `HandlerFailedError` (the peer's handler ended it with an
 * error), `HandlerPanickedError`, `ResponseTooLargeError`,
 * `StreamProtocolError`, `NoHandlerError` (and the other refusals),
 * `DisconnectedError`, `TimeoutError`, `CancelledError`. Then it is over:
 * `next()` resolves `done`.
 *
 * Leaving a `for await` early (`break`, `return`, a throw) calls `return()`,
 * which cancels the stream: a `Cancel` goes to the peer, which stops
 * producing, and the items waiting here are dropped. `cancel()` does the
 * same from anywhere.
 */
export class ItemStream<T> implements AsyncIterableIterator<T> {
  private queue: { payload: Uint8Array; size: number }[] = [];
  private head = 0;
  private waiters: Waiter<T>[] = [];
  /** Nothing more will arrive (the end, a failure, a cancel). */
  private ended = false;
  /** Nothing more for the reader. */
  private closed = false;
  private error: CallError | null = null;
  private gotItem = false;
  private accepted = false;
  // The sender's credit, as this side counts it.
  private creditItems = STREAM_WINDOW_ITEMS;
  private creditBytes = STREAM_WINDOW_BYTES;
  // Read since the last grant.
  private readItems = 0;
  private readBytes = 0;
  private firstTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly arrivalListeners: ((buffered: number) => void)[] = [];
  private readonly endListeners: (() => void)[] = [];
  private peak = 0;

  /** @internal Made by `Socket.requestStream`. */
  constructor(
    /** The request's id, which the stream's frames carry. */
    readonly id: bigint,
    /** The stream request variant's name. */
    readonly name: string,
    private readonly host: StreamHost,
    private readonly idleTimeoutMs = 0,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next item; `done` after the end; rejects once with the stream's error. */
  next(): Promise<IteratorResult<T, undefined>> {
    try {
      const ready = this.take();
      if (ready) return Promise.resolve(ready);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.armIdle();
    });
  }

  /** Cancels the stream (what `break` out of `for await` calls). */
  return(): Promise<IteratorResult<T, undefined>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * Stops the stream: sends `Cancel` unless the peer already ended it,
   * and drops the items not read. Iterating then ends (`done`).
   */
  cancel(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.error = null;
    if (!this.ended) {
      this.ended = true;
      this.clearTimers();
      this.host.cancel();
      this.ended_();
    }
    this.wake();
  }

  /** Whether the stream is over on the wire: ended by the peer, failed or cancelled. */
  get done(): boolean {
    return this.ended;
  }

  /** Items received and not read yet (at most `STREAM_WINDOW_ITEMS`). */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  /** The most items that were ever waiting at once. */
  get peakBuffered(): number {
    return this.peak;
  }

  /**
   * Calls `listener` each time an item arrives, with the number now waiting
   * to be read; returns a function that removes it.
   */
  onArrival(listener: (buffered: number) => void): () => void {
    this.arrivalListeners.push(listener);
    return () => {
      const i = this.arrivalListeners.indexOf(listener);
      if (i >= 0) this.arrivalListeners.splice(i, 1);
    };
  }

  // --- the reader's side -----------------------------------------------------------

  /** A result ready now, or null to wait; throws the stream's error once. */
  private take(): IteratorResult<T, undefined> | null {
    if (this.head < this.queue.length) {
      const { payload, size } = this.queue[this.head]!;
      this.queue[this.head++] = undefined as never;
      if (this.head >= 64 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.consumed(size);
      let value: T;
      try {
        value = this.host.decode(payload) as T;
      } catch (e) {
        this.cancel();
        throw new BadRequestError(`an item of the ${this.name} stream could not be decoded: ${(e as Error).message}`);
      }
      return { done: false, value };
    }
    if (this.closed) return { done: true, value: undefined };
    if (this.ended) {
      this.closed = true;
      const error = this.error;
      this.error = null;
      if (error) throw error;
      return { done: true, value: undefined };
    }
    return null;
  }

  /** Hands what is ready to the waiting `next()` calls. */
  private wake(): void {
    while (this.waiters.length > 0) {
      let ready: IteratorResult<T, undefined> | null;
      try {
        ready = this.take();
      } catch (e) {
        this.waiters.shift()!.reject(e);
        continue;
      }
      if (!ready) return;
      this.waiters.shift()!.resolve(ready);
    }
    this.clearIdle();
  }

  /** Grants back what was read, each time it reaches half the window. */
  private consumed(size: number): void {
    this.readItems += 1;
    this.readBytes += size;
    if (this.ended) return;
    if (this.readItems >= STREAM_WINDOW_ITEMS / 2 || this.readBytes >= STREAM_WINDOW_BYTES / 2) {
      const items = this.readItems;
      const bytes = this.readBytes;
      this.readItems = 0;
      this.readBytes = 0;
      this.creditItems += items;
      this.creditBytes += bytes;
      this.host.credit(items, bytes);
    }
  }

  private armIdle(): void {
    if (this.idleTimeoutMs <= 0 || this.idleTimeoutMs > 0x7fffffff || !this.gotItem || this.idleTimer || this.ended) return;
    const ms = this.idleTimeoutMs;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.waiters.length > 0) this.failAndCancel(new TimeoutError(ms, "no stream item"));
    }, ms);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private clearTimers(): void {
    if (this.firstTimer) clearTimeout(this.firstTimer);
    this.firstTimer = null;
    this.clearIdle();
  }

  private ended_(): void {
    for (const l of this.endListeners.splice(0)) l();
  }

  // --- the socket's side -----------------------------------------------------------

  /** @internal Fails the stream with `TimeoutError` unless an item (or the end) comes within `ms`. */
  setFirstItemTimeout(ms: number): void {
    // setTimeout fires at once beyond 2^31-1 ms (24.8 days): such a deadline is none.
    if (ms <= 0 || ms > 0x7fffffff) return;
    this.firstTimer = setTimeout(() => {
      this.firstTimer = null;
      if (!this.gotItem) this.failAndCancel(new TimeoutError(ms, "no stream item"));
    }, ms);
  }

  /** @internal Calls `listener` once when the stream is over on the wire. */
  onEnded(listener: () => void): void {
    if (this.ended) listener();
    else this.endListeners.push(listener);
  }

  /** @internal The peer accepted the stream (an empty `Response`). */
  accept(): void {
    this.accepted = true;
  }

  /** @internal A `StreamItem` whose frame body is `size` bytes. */
  push(payload: Uint8Array, size: number): void {
    if (this.ended) return;
    if (this.creditItems <= 0 || this.creditBytes <= 0) {
      this.failAndCancel(new StreamProtocolError("the peer sent an item beyond the credit granted"));
      return;
    }
    this.creditItems -= 1;
    this.creditBytes -= size;
    this.accepted = true;
    if (!this.gotItem) {
      this.gotItem = true;
      if (this.firstTimer) clearTimeout(this.firstTimer);
      this.firstTimer = null;
    }
    this.clearIdle();
    // A copy: the payload is a view of the socket's read buffer.
    this.queue.push({ payload: payload.slice(), size });
    const buffered = this.buffered;
    if (buffered > this.peak) this.peak = buffered;
    for (const l of this.arrivalListeners) {
      try {
        l(buffered);
      } catch (e) {
        this.host.report(e instanceof Error ? e : new NetsockError(`an onArrival listener failed: ${String(e)}`));
      }
    }
    this.wake();
  }

  /** @internal `StreamEnd`, a `Failure`, or the connection ended: nothing more comes. */
  finish(error: CallError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.clearTimers();
    this.host.forget();
    this.ended_();
    this.wake();
  }

  /** @internal Ends the stream with `error` and sends `Cancel`. */
  failAndCancel(error: CallError): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.clearTimers();
    this.host.cancel();
    this.ended_();
    this.wake();
  }

  /** @internal Whether the peer accepted the stream. */
  get isAccepted(): boolean {
    return this.accepted;
  }
}
