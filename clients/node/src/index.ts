/**
 * netsock for Node.js: a peer of the Rust `netsock` crate. Load the schema
 * JSON of an event enum (`loadSchema`), then `connect` to a server or
 * `Server.bind` one; `emit`, `request` and `on` take variant names, checked
 * against the schema at run time and, with types from `netsock-types`, at
 * compile time.
 */
export * from "./errors.js";
export { loadSchema, Schema, Codec } from "./schema.js";
export type { AnyEvents, EventMap, VariantSpec, Type, TypeDef, Variant, EventVariant, SchemaDocument } from "./schema.js";
export { Socket } from "./socket.js";
export type {
  CallOptions,
  Caller,
  DisconnectInfo,
  EventNames,
  HandledNames,
  Handler,
  HandlerContext,
  PayloadArgs,
  RequestNames,
  SocketOptions,
  StreamItemOf,
  StreamNames,
} from "./socket.js";
export { ItemStream } from "./stream.js";
export { connect, parseAddress, ClientSocket } from "./client.js";
export type { Address, ConnectOptions, ReconnectOptions } from "./client.js";
export { Server, ServerSocket } from "./server.js";
export type { HelloInfo, ServerOptions } from "./server.js";
export {
  DEFAULT_MAX_FRAME,
  MIN_MAX_FRAME,
  PROTOCOL_VERSION,
  STREAM_WINDOW_BYTES,
  STREAM_WINDOW_ITEMS,
  decodeFrame,
  encodeFrame,
} from "./frames.js";
export type { Frame, Header, RemoteError } from "./frames.js";
export { fnv1a64, Reader, Writer } from "./postcard.js";
