/**
 * The listening side: `Server.bind(addr, schema)` accepts TCP or Unix
 * connections, answers each `Hello` with `Welcome` or the right `Reject`,
 * and hands every accepted connection to the `connection` listeners as a
 * {@link Socket}.
 */
import { existsSync, unlinkSync } from "node:fs";
import { connect as netConnect, createServer, type Server as NetServer, type Socket as NetSocket } from "node:net";

import { ConnectError, type RejectReason } from "./errors.js";
import { MAGIC, MIN_MAX_FRAME, PROTOCOL_VERSION, type Hello } from "./frames.js";
import { Link } from "./link.js";
import type { AnyEvents, EventMap, Schema } from "./schema.js";
import { parseAddress } from "./client.js";
import { Socket, resolveOptions, type EventNames, type PayloadArgs, type ResolvedOptions, type SocketOptions } from "./socket.js";

/** What a server's `authenticate` hook sees of a connecting client. */
export interface HelloInfo {
  /** The `auth` bytes of its `Hello`, if any. */
  auth: Uint8Array | null;
  /** Its address (for TCP). */
  remoteAddress?: string;
}

/** A server's settings. */
export interface ServerOptions extends SocketOptions {
  /** How long a client may take to send its `Hello`, in ms (default 10000). */
  handshakeTimeoutMs?: number;
  /** The largest first frame accepted, in bytes (default 4096). */
  maxHandshakeSize?: number;
  /** Accept clients built from another schema. */
  lenient?: boolean;
  /** Decides on each client: `true` to accept, or the reason to refuse it with (`Reject(Refused)`). */
  authenticate?: (hello: HelloInfo) => true | string | Promise<true | string>;
}

/** Whether something accepts connections on the Unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = netConnect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/** A server's connection: a {@link Socket} the server can shut down. */
export class ServerSocket<E extends EventMap = AnyEvents> extends Socket<E> {
  constructor(schema: Schema<E>, options: ResolvedOptions, link: Link, id: bigint, onGone: () => void) {
    super(schema, options);
    this.onLinkEnd = onGone;
    this.attach(link, id);
  }

  /** Closes with `Close(Shutdown)`. */
  shutdown(message: string): Promise<void> {
    return this.closeWith({ kind: "Shutdown", message }, `server shutting down: ${message}`);
  }
}

/**
 * A netsock server.
 *
 * ```ts
 * const io = await Server.bind("tcp://127.0.0.1:0", schema);
 * io.on("connection", (socket) => {
 *   socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
 * });
 * console.log(`listening on ${io.address}, ${io.sockets.size} clients`);
 * ```
 */
export class Server<E extends EventMap = AnyEvents> {
  /** The connected sockets, by connection id. */
  readonly sockets = new Map<bigint, ServerSocket<E>>();
  private readonly listeners: ((socket: ServerSocket<E>) => unknown)[] = [];
  private readonly handshaking = new Set<NetSocket>();
  private nextId = 1n;
  private readonly options: ResolvedOptions;
  private closing = false;

  private constructor(
    private readonly net: NetServer,
    readonly schema: Schema<E>,
    private readonly serverOptions: ServerOptions,
    /** Where it listens, in the form `connect` takes (`tcp://127.0.0.1:PORT` or a path). */
    readonly address: string,
    private readonly path: string | null,
  ) {
    this.options = resolveOptions(serverOptions);
    net.on("connection", (sock) => this.accept(sock));
  }

  /** Listens on `addr` (`tcp://HOST:PORT`, port 0 for any, or a Unix socket path). */
  static async bind<E extends EventMap = AnyEvents>(
    addr: string,
    schema: Schema<E>,
    options: ServerOptions = {},
  ): Promise<Server<E>> {
    const target = parseAddress(addr);
    // A socket file left by a dead server is replaced; one a live server answers on is not.
    if ("path" in target && existsSync(target.path)) {
      if (await answers(target.path)) throw new ConnectError(`cannot listen on ${addr}: a server is already listening there`);
      unlinkSync(target.path);
    }
    const net = createServer();
    await new Promise<void>((resolve, reject) => {
      net.once("error", (e) => reject(new ConnectError(`cannot listen on ${addr}: ${e.message}`)));
      if ("path" in target) {
        net.listen(target.path, resolve);
      } else {
        net.listen(target.port, target.host, resolve);
      }
    });
    net.on("error", () => {});
    const bound = net.address();
    const address =
      "path" in target
        ? target.path
        : typeof bound === "object" && bound
          ? `tcp://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
          : addr;
    return new Server(net, schema, options, address, "path" in target ? target.path : null);
  }

  /**
   * Calls `listener` with every accepted connection, before any of its
   * frames is handled. If it throws (or its promise rejects), that
   * connection is closed with `Close(Application(message))`.
   */
  on(event: "connection", listener: (socket: ServerSocket<E>) => unknown): this {
    if (event !== "connection") throw new TypeError(`unknown server event ${String(event)}`);
    this.listeners.push(listener);
    return this;
  }

  /** Emits event `name` to every connected socket. */
  async emit<K extends EventNames<E>>(name: K, ...args: PayloadArgs<E[K]["payload"]>): Promise<void> {
    await Promise.all([...this.sockets.values()].map((s) => s.emit(name, ...args)));
  }

  /** Stops listening and closes every connection with `Close(Shutdown)`. */
  async close(): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.net.close(() => resolve()));
    for (const sock of this.handshaking) sock.destroy();
    await Promise.all([...this.sockets.values()].map((s) => s.shutdown("the server is shutting down")));
    await stopped;
    if (this.path && existsSync(this.path)) unlinkSync(this.path);
  }

  private accept(sock: NetSocket): void {
    if (this.closing) {
      sock.destroy();
      return;
    }
    this.handshaking.add(sock);
    const maxHandshake = this.serverOptions.maxHandshakeSize ?? 4096;
    const link = new Link(sock, maxHandshake, MIN_MAX_FRAME);
    const timeoutMs = this.serverOptions.handshakeTimeoutMs ?? 10_000;
    let answered = false;
    const reject = (reason: RejectReason) => {
      answered = true;
      clearTimeout(timer);
      this.handshaking.delete(sock);
      try {
        link.send({ kind: "Reject", reason });
      } catch {
        // Too large for the client: it still sees the connection close.
      }
      link.hold();
      sock.end();
      sock.destroySoon?.();
    };
    const timer = setTimeout(() => reject({ kind: "HandshakeTimeout", afterMs: BigInt(timeoutMs) }), timeoutMs);
    timer.unref();
    // An oversized or undecodable first frame is a stranger: `BadMagic`.
    link.onBreach = () => {
      if (!answered) reject({ kind: "BadMagic" });
    };
    link.handle(
      ({ header }) => {
        if (answered) return;
        if (header.kind !== "Hello" || !MAGIC.every((b, i) => header.magic[i] === b)) {
          reject({ kind: "BadMagic" });
          return;
        }
        // Whatever follows waits for the socket (the client should send nothing before Welcome).
        link.hold();
        if (header.maxFrame >= MIN_MAX_FRAME) link.sendMax = Math.min(header.maxFrame, this.options.maxFrame);
        void this.decide(header, sock).then((reason) => {
          if (answered) return;
          if (reason) {
            reject(reason);
            return;
          }
          answered = true;
          clearTimeout(timer);
          this.handshaking.delete(sock);
          this.welcome(link, header);
        });
      },
      () => {
        clearTimeout(timer);
        this.handshaking.delete(sock);
      },
    );
  }

  /** The reason to refuse `hello`, or null to accept it. */
  private async decide(hello: Hello, sock: NetSocket): Promise<RejectReason | null> {
    if (hello.version !== PROTOCOL_VERSION) {
      return { kind: "VersionMismatch", server: PROTOCOL_VERSION, client: hello.version };
    }
    if (hello.maxFrame < MIN_MAX_FRAME) {
      return { kind: "FrameLimitTooSmall", maxFrame: hello.maxFrame, min: MIN_MAX_FRAME };
    }
    const id = this.schema.id;
    const lenient = hello.lenient || (this.serverOptions.lenient ?? false);
    if (!lenient && (hello.sends !== id || hello.receives !== id)) {
      const server: [bigint, bigint] = [id, id];
      const client: [bigint, bigint] = [hello.sends, hello.receives];
      const textBytes = 2 * Buffer.byteLength(this.schema.text) + 64;
      if (textBytes <= Math.min(hello.maxFrame, 64 * 1024)) {
        return { kind: "SchemaDiffers", server, client, serverSchema: [this.schema.text, this.schema.text] };
      }
      return { kind: "SchemaMismatch", server, client };
    }
    if (this.serverOptions.authenticate) {
      try {
        const verdict = await this.serverOptions.authenticate({
          auth: hello.auth,
          ...(sock.remoteAddress !== undefined && { remoteAddress: sock.remoteAddress }),
        });
        if (verdict !== true) return { kind: "Refused", message: verdict };
      } catch (e) {
        return { kind: "Refused", message: `the server's check failed: ${(e as Error).message}` };
      }
    }
    if (this.closing) return { kind: "Other", message: "the server is shutting down" };
    return null;
  }

  private welcome(link: Link, hello: Hello): void {
    link.onBreach = null;
    link.setLimits(this.options.maxFrame, Math.min(hello.maxFrame, this.options.maxFrame));
    const id = this.nextId++;
    link.send({ kind: "Welcome", id, maxFrame: this.options.maxFrame });
    const socket = new ServerSocket(this.schema, this.options, link, id, () => this.sockets.delete(id));
    this.sockets.set(id, socket);
    // As in Rust: a failing connection handler closes that connection with Close(Application).
    const failed = (e: unknown) =>
      void socket.closeWith({ kind: "Application", message: e instanceof Error ? e.message : String(e) }, "the connection handler failed");
    for (const l of this.listeners) {
      try {
        const result = l(socket);
        if (result instanceof Promise) result.catch(failed);
      } catch (e) {
        failed(e);
      }
    }
  }
}
