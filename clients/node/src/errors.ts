/**
 * The errors a netsock peer meets, mirroring the Rust crate's: {@link CallError}
 * and its kinds for a request, {@link RejectedError} for a refused
 * handshake, {@link ValueError} for a value that does not fit the schema.
 *
 * Every class extends {@link NetsockError}, so one `instanceof` catches all.
 */

/** The base class of every error this package throws. */
export class NetsockError extends Error {
  override name = "NetsockError";
}

/** The schema document is malformed (or its id does not match its text). */
export class SchemaError extends NetsockError {
  override name = "SchemaError";
}

/**
 * A value does not match the schema; `path` names the field
 * (`Point.x`, `Mirror.kinds[2].Pair.1`).
 */
export class ValueError extends NetsockError {
  override name = "ValueError";
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${path}: expected ${expected}, got ${describe(got)}`);
  }
}

/** Bytes from the peer could not be decoded. */
export class DecodeError extends NetsockError {
  override name = "DecodeError";
}

/** The peer broke the protocol (garbage, an unknown frame kind, a frame out of place). */
export class ProtocolError extends NetsockError {
  override name = "ProtocolError";
}

/** A frame over a limit: the peer's, when sending; ours, when the peer sent it. */
export class FrameTooLargeError extends NetsockError {
  override name = "FrameTooLargeError";
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super(`a frame of ${size} bytes exceeds the limit of ${max} bytes (see maxFrame)`);
  }
}

/** Why a server refused a connection, as sent in its `Reject` frame. */
export type RejectReason =
  | { kind: "BadMagic" }
  | { kind: "VersionMismatch"; server: number; client: number }
  | { kind: "SchemaMismatch"; server: [bigint, bigint]; client: [bigint, bigint] }
  | { kind: "Other"; message: string }
  | { kind: "Refused"; message: string }
  | { kind: "HandshakeTimeout"; afterMs: bigint }
  | { kind: "FrameLimitTooSmall"; maxFrame: number; min: number }
  | {
      kind: "SchemaDiffers";
      server: [bigint, bigint];
      client: [bigint, bigint];
      serverSchema: [string, string];
    }
  | { kind: "Unknown"; index: number };

/** Why a peer closed the connection, as sent in its `Close` frame. */
export type CloseReason =
  | { kind: "Normal" }
  | { kind: "FrameTooLarge"; size: bigint; max: bigint }
  | { kind: "Protocol"; message: string }
  | { kind: "Shutdown"; message: string }
  | { kind: "Application"; message: string }
  | { kind: "Unknown"; index: number };

/** A connection could not be made (the address, the transport, the handshake). */
export class ConnectError extends NetsockError {
  override name = "ConnectError";
}

/** The server answered the handshake with `Reject`. */
export class RejectedError extends ConnectError {
  override name = "RejectedError";
  constructor(
    readonly reason: RejectReason,
    ourSchemaText?: string,
  ) {
    super(`the server rejected the connection: ${describeReject(reason, ourSchemaText)}`);
  }
}

/** How a request failed: the `kind` of a {@link CallError}. */
export type CallErrorKind =
  | "Timeout"
  | "Cancelled"
  | "Disconnected"
  | "NoHandler"
  | "NotARequest"
  | "HandlerPanicked"
  | "BadRequest"
  | "ResponseTooLarge"
  | "Encode"
  | "FrameTooLarge"
  | "HandlerFailed"
  | "StreamProtocol";

/**
 * A request failed. Each kind is its own subclass (`TimeoutError`,
 * `NoHandlerError`, ...), and `kind` names it too, for a `switch`.
 */
export class CallError extends NetsockError {
  override name = "CallError";
  constructor(
    readonly kind: CallErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** No reply within the request's timeout (for a stream: no item); a `Cancel` was sent. */
export class TimeoutError extends CallError {
  override name = "TimeoutError";
  constructor(
    readonly afterMs: number,
    what = "no reply",
  ) {
    super("Timeout", `${what} within ${afterMs} ms; the request was cancelled`);
  }
}

/** The caller's `AbortSignal` fired; a `Cancel` was sent. */
export class CancelledError extends CallError {
  override name = "CancelledError";
  constructor() {
    super("Cancelled", "the request was cancelled by its AbortSignal");
  }
}

/** The connection closed before the reply arrived (or was not open). */
export class DisconnectedError extends CallError {
  override name = "DisconnectedError";
  constructor(readonly reason: string) {
    super("Disconnected", `the connection closed before the reply arrived: ${reason}`);
  }
}

/** The peer has no handler for this request variant. */
export class NoHandlerError extends CallError {
  override name = "NoHandlerError";
  constructor(readonly event: string) {
    super("NoHandler", `the peer has no handler for request ${event}`);
  }
}

/** The peer takes this variant for an event, not a request. */
export class NotARequestError extends CallError {
  override name = "NotARequestError";
  constructor(readonly event: string) {
    super("NotARequest", `${event} is an event, not a request; emit it instead`);
  }
}

/** The peer's handler failed (panicked, or threw). */
export class HandlerPanickedError extends CallError {
  override name = "HandlerPanickedError";
  constructor(readonly detail: string) {
    super("HandlerPanicked", `the peer's handler panicked: ${detail}`);
  }
}

/** The peer could not decode the request. */
export class BadRequestError extends CallError {
  override name = "BadRequestError";
  constructor(readonly detail: string) {
    super("BadRequest", `the peer could not decode the request: ${detail}`);
  }
}

/** The reply is over this side's frame limit. */
export class ResponseTooLargeError extends CallError {
  override name = "ResponseTooLargeError";
  constructor(
    readonly size: bigint,
    readonly max: bigint,
  ) {
    super("ResponseTooLarge", `the reply of ${size} bytes is over the caller's limit of ${max} bytes`);
  }
}

/** The peer could not encode its reply. */
export class EncodeError extends CallError {
  override name = "EncodeError";
  constructor(readonly detail: string) {
    super("Encode", `the peer could not encode its reply: ${detail}`);
  }
}

/** A stream's handler on the peer ended it with an error (`StreamEnd` with `HandlerFailed`). */
export class HandlerFailedError extends CallError {
  override name = "HandlerFailedError";
  constructor(readonly detail: string) {
    super("HandlerFailed", `the peer's handler failed: ${detail}`);
  }
}

/** A stream's rules were broken (an item beyond the credit granted), by the peer or, as it says, by this side. */
export class StreamProtocolError extends CallError {
  override name = "StreamProtocolError";
  constructor(readonly detail: string) {
    super("StreamProtocol", `stream protocol error: ${detail}`);
  }
}

/** The request is over the peer's frame limit, so it was not sent. */
export class CallFrameTooLargeError extends CallError {
  override name = "CallFrameTooLargeError";
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super("FrameTooLarge", `frame of ${size} bytes exceeds the limit of ${max} bytes (see maxFrame)`);
  }
}

/** A close reason in words. */
export function describeClose(reason: CloseReason): string {
  switch (reason.kind) {
    case "Normal":
      return "closed normally";
    case "FrameTooLarge":
      return `a frame of ${reason.size} bytes exceeded the peer's limit of ${reason.max} bytes`;
    case "Protocol":
      return `protocol error: ${reason.message}`;
    case "Shutdown":
      return `server shutting down: ${reason.message}`;
    case "Application":
      return `closed by the application: ${reason.message}`;
    case "Unknown":
      return `closed for a reason this version does not know (variant ${reason.index})`;
  }
}

const hex = (id: bigint) => id.toString(16).padStart(16, "0");

/** A reject reason in words; for a schema mismatch, which variants differ. */
export function describeReject(reason: RejectReason, ourSchemaText?: string): string {
  switch (reason.kind) {
    case "BadMagic":
      return "the first frame is not a netsock handshake";
    case "VersionMismatch":
      return `the server speaks protocol version ${reason.server}, the client ${reason.client}`;
    case "SchemaMismatch":
      return (
        `schema mismatch: the server sends ${hex(reason.server[0])} and receives ${hex(reason.server[1])}, ` +
        `the client sends ${hex(reason.client[0])} and receives ${hex(reason.client[1])} ` +
        "(both sides must be built from the same enum)"
      );
    case "SchemaDiffers": {
      const theirs = reason.serverSchema[1];
      const diff = ourSchemaText === undefined ? "" : `: ${schemaDiff(theirs, ourSchemaText)}`;
      return `schema mismatch: the server's enum is ${theirs}${diff}`;
    }
    case "Other":
      return reason.message;
    case "Refused":
      return `refused: ${reason.message}`;
    case "HandshakeTimeout":
      return `no handshake within ${reason.afterMs} ms`;
    case "FrameLimitTooSmall":
      return `the client's frame limit of ${reason.maxFrame} bytes is below the protocol minimum of ${reason.min}`;
    case "Unknown":
      return `a reason this version does not know (variant ${reason.index})`;
  }
}

/** The top-level variants of a schema text (`Name{A(T),B{x:u8}->bool}`). */
function variantsOf(text: string): string[] {
  const open = text.indexOf("{");
  if (open < 0 || !text.endsWith("}")) return [];
  const body = text.slice(open + 1, -1);
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "(" || c === "{" || c === "<" || c === "[") depth++;
    else if ((c === ")" || c === "}" || c === ">" || c === "]") && body[i - 1] !== "-") depth--;
    else if (c === "," && depth === 0) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  if (body.length > 0) out.push(body.slice(start));
  return out;
}

/** Which variants only one side has, in words. */
export function schemaDiff(server: string, ours: string): string {
  const theirs = variantsOf(server);
  const mine = variantsOf(ours);
  const onlyServer = theirs.filter((v) => !mine.includes(v));
  const onlyUs = mine.filter((v) => !theirs.includes(v));
  const parts: string[] = [];
  if (server.slice(0, server.indexOf("{")) !== ours.slice(0, ours.indexOf("{"))) {
    parts.push(`the server's enum is named differently`);
  }
  if (onlyServer.length) parts.push(`only the server has ${onlyServer.join(", ")}`);
  if (onlyUs.length) parts.push(`only this side has ${onlyUs.join(", ")}`);
  return parts.length ? parts.join("; ") : "the variants are the same but in another order";
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (typeof value === "bigint") return `the bigint ${value}n`;
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  if (typeof value === "number" || typeof value === "boolean") return `the ${typeof value} ${String(value)}`;
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.length} bytes`;
  if (value instanceof Map) return `a Map of ${value.size} entries`;
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  return `a ${typeof value}${typeof value === "object" ? ` with keys [${Object.keys(value as object).join(", ")}]` : ""}`;
}
