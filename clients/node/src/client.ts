/**
 * The connecting side: `connect(addr, schema)` opens a TCP or Unix socket,
 * sends `Hello`, waits for `Welcome` (or throws `RejectedError`), and
 * returns a {@link ClientSocket} that reconnects with backoff when the
 * connection drops.
 */
import { connect as netConnect, type Socket as NetSocket } from "node:net";

import { ConnectError, RejectedError, describeClose } from "./errors.js";
import { MAGIC, MIN_MAX_FRAME, PROTOCOL_VERSION } from "./frames.js";
import { Link, type LinkEnd } from "./link.js";
import type { AnyEvents, EventMap, Schema } from "./schema.js";
import { Socket, resolveOptions, type DisconnectInfo, type SocketOptions } from "./socket.js";

/** Where to connect or listen: a Unix socket path, `unix:PATH`, `tcp://HOST:PORT` or `HOST:PORT`. */
export type Address = { path: string } | { host: string; port: number };

/** Reads an address string; a `ConnectError` says what forms there are. */
export function parseAddress(addr: string): Address {
  if (addr.startsWith("unix:")) return { path: addr.slice("unix:".length).replace(/^\/\/(?=\/)/, "") };
  const tcp = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^/:]+):(\d+)$/.exec(addr);
  if (tcp) return { host: tcp[1]!.replace(/^\[|\]$/g, ""), port: Number(tcp[2]) };
  if (addr.startsWith("tcp://")) {
    throw new ConnectError(`bad address ${JSON.stringify(addr)}: expected tcp://HOST:PORT`);
  }
  if (addr.length === 0) throw new ConnectError("empty address: give a Unix socket path or tcp://HOST:PORT");
  return { path: addr };
}

/** How a client reconnects after its connection drops. */
export interface ReconnectOptions {
  /** The first wait, in ms (default 100); each attempt doubles it. */
  initialDelayMs?: number;
  /** The longest wait, in ms (default 5000). */
  maxDelayMs?: number;
  /** Give up after this many failed attempts (default: never). */
  maxAttempts?: number;
}

/** A client's settings. */
export interface ConnectOptions extends SocketOptions {
  /** Bytes for the server's middleware (the `auth` of `Hello`). */
  auth?: Uint8Array;
  /** Ask the server to accept a schema mismatch. */
  lenient?: boolean;
  /** How long the handshake may take, in ms (default 10000). */
  handshakeTimeoutMs?: number;
  /** Reconnect with backoff after an unexpected disconnect (default on); `false` to stay closed. */
  reconnect?: boolean | ReconnectOptions;
}

/**
 * Connects to a netsock server and completes the handshake. Rejects with a
 * `RejectedError` (the server's reason) or a `ConnectError`.
 *
 * ```ts
 * const schema = loadSchema<Interop>(readFileSync("interop.json", "utf8"));
 * const socket = await connect("tcp://127.0.0.1:7000", schema);
 * socket.on("Note", (text) => console.log(text));
 * console.log(await socket.request("Sum", [1n, 2n])); // 3n
 * ```
 */
export async function connect<E extends EventMap = AnyEvents>(
  addr: string,
  schema: Schema<E>,
  options: ConnectOptions = {},
): Promise<ClientSocket<E>> {
  const socket = new ClientSocket(addr, schema, options);
  await socket.open();
  return socket;
}

/** A client's socket: a {@link Socket} that reconnects. */
export class ClientSocket<E extends EventMap = AnyEvents> extends Socket<E> {
  private readonly reconnect: Required<ReconnectOptions> | null;
  private retry: NodeJS.Timeout | null = null;
  private readonly closedWaiters: ((info: DisconnectInfo) => void)[] = [];
  private final: DisconnectInfo | null = null;

  constructor(
    readonly addr: string,
    schema: Schema<E>,
    private readonly connectOptions: ConnectOptions,
  ) {
    super(schema, resolveOptions(connectOptions));
    const r = connectOptions.reconnect ?? true;
    this.reconnect =
      r === false
        ? null
        : {
            initialDelayMs: 100,
            maxDelayMs: 5000,
            maxAttempts: Infinity,
            ...(r === true ? {} : r),
          };
    this.onLinkEnd = (info) => this.linkEnded(info);
  }

  /** Resolves when the socket is closed for good (closed by either side, or out of attempts). */
  closed(): Promise<DisconnectInfo> {
    if (this.final) return Promise.resolve(this.final);
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  override async close(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    await super.close();
    this.finishFor({ reason: "closed by this side" });
  }

  /** One connection and handshake. */
  async open(): Promise<void> {
    const { link, id } = await handshake(this.addr, this.schema, this.connectOptions, this.options.maxFrame);
    if (this.closedByUser) {
      link.destroy({ reason: "closed by this side" });
      return;
    }
    this.attach(link, id, true);
  }

  private finishFor(info: DisconnectInfo): void {
    if (this.final) return;
    this.final = info;
    for (const w of this.closedWaiters.splice(0)) w(info);
  }

  private linkEnded(info: DisconnectInfo): void {
    const peerClosedNormally = info.close?.kind === "Normal" || info.close?.kind === "Shutdown";
    if (this.closedByUser || !this.reconnect || (info.close && !peerClosedNormally && info.close.kind !== "Unknown")) {
      this.finishFor(info);
      return;
    }
    this.scheduleRetry(1, info);
  }

  private scheduleRetry(attempt: number, last: DisconnectInfo): void {
    const r = this.reconnect!;
    if (attempt > r.maxAttempts) {
      this.finishFor({ reason: `gave up reconnecting after ${r.maxAttempts} attempts: ${last.reason}` });
      return;
    }
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** (attempt - 1));
    const delay = base - Math.random() * base * 0.25;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.closedByUser) return;
      this.open().then(
        () => this.notifyReconnect(),
        (e: Error) => {
          if (e instanceof RejectedError) this.finishFor({ reason: e.message, error: e });
          else this.scheduleRetry(attempt + 1, { reason: e.message, error: e });
        },
      );
    }, delay);
  }
}

/** Opens the transport, sends `Hello`, and waits for `Welcome`. */
async function handshake(
  addr: string,
  schema: Schema<EventMap>,
  options: ConnectOptions,
  maxFrame: number,
): Promise<{ link: Link; id: bigint }> {
  const target = parseAddress(addr);
  const sock = await new Promise<NetSocket>((resolve, reject) => {
    const s = "path" in target ? netConnect(target.path) : netConnect(target.port, target.host);
    s.once("connect", () => {
      s.removeListener("error", reject);
      resolve(s);
    });
    s.once("error", (e) => reject(new ConnectError(`cannot connect to ${addr}: ${e.message}`)));
  });
  const link = new Link(sock, maxFrame, MIN_MAX_FRAME);
  const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      link.destroy({ reason: "handshake timeout" });
      reject(new ConnectError(`no answer to the handshake from ${addr} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => clearTimeout(timer);
    const onEnd = (end: LinkEnd) => {
      done();
      const why = end.close ? describeClose(end.close) : end.reason;
      reject(new ConnectError(`the connection to ${addr} ended during the handshake: ${why}`));
    };
    link.handle(({ header }) => {
      done();
      if (header.kind === "Welcome") {
        if (header.maxFrame < MIN_MAX_FRAME) {
          const message = `the server's frame limit of ${header.maxFrame} bytes is below the protocol minimum of ${MIN_MAX_FRAME}`;
          link.destroy({ reason: message });
          reject(new ConnectError(message));
          return;
        }
        link.sendMax = Math.min(header.maxFrame, maxFrame);
        link.hold();
        resolve({ link, id: header.id });
      } else if (header.kind === "Reject") {
        link.hold();
        link.destroy({ reason: "rejected" });
        reject(new RejectedError(header.reason, schema.text));
      } else {
        const message = `expected Welcome or Reject, got ${header.kind}`;
        link.hold();
        link.fail(new ConnectError(message), { kind: "Protocol", message });
        reject(new ConnectError(`${addr} answered the handshake wrongly: ${message}`));
      }
    }, onEnd);
    link.send({
      kind: "Hello",
      magic: MAGIC,
      version: PROTOCOL_VERSION,
      sends: schema.id,
      receives: schema.id,
      maxFrame,
      lenient: options.lenient ?? false,
      auth: options.auth ?? null,
    });
  });
}
