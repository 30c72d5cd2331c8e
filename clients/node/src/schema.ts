/**
 * The schema JSON (format 1, see `clients/SCHEMA-JSON.md`): loading and
 * checking a document, and the postcard encoder/decoder it drives.
 *
 * JavaScript representation of each type (what `emit` takes and `on`
 * handlers get):
 *
 * | schema type | JavaScript |
 * |-------------|------------|
 * | `u8` `u16` `u32` `i8` `i16` `i32` | `number` (an integer in range) |
 * | `u64` `i64` `u128` `i128` | `bigint` (a safe-integer `number` is accepted too) |
 * | `f32` `f64` | `number` |
 * | `bool` | `boolean` |
 * | `char` | `string` of exactly one code point |
 * | `string` | `string` |
 * | `bytes` | `Uint8Array` (a `Buffer` is one) |
 * | `unit`, `unit_struct` | `null` (`undefined` accepted) |
 * | `option` | the value, or `null` for `None` (`undefined` accepted) |
 * | `seq`, `array`, `tuple`, `tuple_struct` | an array |
 * | `seq` and `array` of `u8` (`Vec<u8>`, `[u8; N]`) | `Uint8Array` (an array of numbers accepted) |
 * | `map` | a `Map` |
 * | `struct` | an object with the fields by name (no other keys) |
 * | `newtype_struct` | the inner value |
 * | `enum` | serde's external tagging: `"Plain"` for a unit variant, `{ Wrapped: 7 }`, `{ Pair: [-1n, "p"] }`, `{ Named: { z: "z" } }` |
 *
 * A variant of the event enum itself is its name plus a payload: nothing for
 * a unit variant, the value for a newtype, an array for a tuple variant and
 * an object for a struct variant.
 */
import { DecodeError, SchemaError, ValueError } from "./errors.js";
import { Reader, Writer, fnv1a64 } from "./postcard.js";

/** A type in the schema JSON. */
export type Type =
  | {
      type:
        | "unit"
        | "bool"
        | "u8"
        | "u16"
        | "u32"
        | "u64"
        | "u128"
        | "i8"
        | "i16"
        | "i32"
        | "i64"
        | "i128"
        | "f32"
        | "f64"
        | "char"
        | "string"
        | "bytes";
    }
  | { type: "option"; some: Type }
  | { type: "seq"; item: Type }
  | { type: "array"; item: Type; len: number }
  | { type: "tuple"; items: Type[] }
  | { type: "map"; key: Type; value: Type }
  | { type: "ref"; name: string };

/** A field of a struct or struct variant. */
export interface Field {
  name: string;
  type: Type;
}

/** A variant of an enum: its index on the wire, its name and its fields. */
export type VariantShape =
  | { shape: "unit" }
  | { shape: "newtype"; type: Type }
  | { shape: "tuple"; items: Type[] }
  | { shape: "struct"; fields: Field[] };

export type Variant = VariantShape & { index: number; name: string };

/** A variant of the event enum: a `Variant`, plus whether it is a request and its reply type. */
export type EventVariant = Variant & {
  request: boolean;
  response: Type | null;
  /** A stream request's item type (absent in documents from before streams). */
  stream?: Type | null;
  /**
   * The item type of the upload stream a request carries from its caller
   * (absent in documents from before uploads). This package sends no
   * uploads and serves none.
   */
  upload?: Type | null;
};

/** A named type in `types`. */
export type TypeDef =
  | { kind: "struct"; fields: Field[] }
  | { kind: "tuple_struct"; items: Type[] }
  | { kind: "newtype_struct"; type: Type }
  | { kind: "unit_struct" }
  | { kind: "enum"; variants: Variant[] };

/** The schema JSON document, as parsed. */
export interface SchemaDocument {
  format: number;
  name: string;
  schema_text: string;
  schema_id: string;
  variants: EventVariant[];
  types: Record<string, TypeDef>;
}

/**
 * What a variant carries, for typing `emit`, `request` and `on`: generated
 * by `netsock-types` from a schema JSON, one entry per variant.
 */
export interface VariantSpec {
  payload: unknown;
  request: boolean;
  response: unknown;
  /** A stream request's item type (`requestStream`); absent otherwise. */
  stream?: unknown;
  /** The item type of the upload a request carries; absent otherwise. */
  upload?: unknown;
}

/** An event enum's variants by name: what `netsock-types` generates. */
export type EventMap = { [name: string]: VariantSpec };

/** The event map of a schema without generated types: any name, any payload. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEvents = { [name: string]: { payload: any; request: boolean; response: any; stream: any; upload: any } };

const INT_RANGES: Record<string, [bigint, bigint]> = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffffffffn],
  u64: [0n, (1n << 64n) - 1n],
  u128: [0n, (1n << 128n) - 1n],
  i8: [-0x80n, 0x7fn],
  i16: [-0x8000n, 0x7fffn],
  i32: [-0x80000000n, 0x7fffffffn],
  i64: [-(1n << 63n), (1n << 63n) - 1n],
  i128: [-(1n << 127n), (1n << 127n) - 1n],
};
const BIG = new Set(["u64", "u128", "i64", "i128"]);
const PRIMITIVES = new Set([
  "unit",
  "bool",
  "f32",
  "f64",
  "char",
  "string",
  "bytes",
  ...Object.keys(INT_RANGES),
]);

/** How deep a decoded value may nest before it is taken for garbage. */
const MAX_DEPTH = 128;

/** A named-type table plus the codec over it; the schema and the frame header both use it. */
export class Codec {
  constructor(readonly types: Record<string, TypeDef>) {}

  encode(type: Type, value: unknown, path: string, w: Writer): void {
    switch (type.type) {
      case "unit":
        if (value !== null && value !== undefined) throw new ValueError(path, "null (unit)", value);
        return;
      case "bool":
        if (typeof value !== "boolean") throw new ValueError(path, "a boolean", value);
        w.byte(value ? 1 : 0);
        return;
      case "u8":
      case "u16":
      case "u32":
      case "u64":
      case "u128":
      case "i8":
      case "i16":
      case "i32":
      case "i64":
      case "i128": {
        const v = this.integer(type.type, value, path);
        if (type.type === "u8") w.byte(Number(v));
        else if (type.type === "i8") w.byte(Number(v) & 0xff);
        else if (type.type.startsWith("u")) w.varint(v);
        else w.zigzag(v);
        return;
      }
      case "f32":
      case "f64":
        if (typeof value !== "number") throw new ValueError(path, `a number (${type.type})`, value);
        if (type.type === "f32") w.f32(value);
        else w.f64(value);
        return;
      case "char":
        if (typeof value !== "string" || [...value].length !== 1) {
          throw new ValueError(path, "a string of one character (char)", value);
        }
        w.string(value);
        return;
      case "string":
        if (typeof value !== "string") throw new ValueError(path, "a string", value);
        w.string(value);
        return;
      case "bytes":
        if (!(value instanceof Uint8Array)) throw new ValueError(path, "a Uint8Array (bytes)", value);
        w.bytesWithLen(value);
        return;
      case "option":
        if (value === null || value === undefined) {
          w.byte(0);
        } else {
          w.byte(1);
          this.encode(type.some, value, path, w);
        }
        return;
      case "seq":
        if (type.item.type === "u8" && value instanceof Uint8Array) {
          w.bytesWithLen(value);
          return;
        }
        if (!Array.isArray(value)) throw new ValueError(path, type.item.type === "u8" ? "a Uint8Array (Vec<u8>)" : "an array (seq)", value);
        w.varint(value.length);
        value.forEach((item, i) => this.encode(type.item, item, `${path}[${i}]`, w));
        return;
      case "array":
        if (type.item.type === "u8" && value instanceof Uint8Array && value.length === type.len) {
          w.raw(value);
          return;
        }
        if (!Array.isArray(value) || value.length !== type.len) {
          throw new ValueError(path, `an array of exactly ${type.len} items`, value);
        }
        value.forEach((item, i) => this.encode(type.item, item, `${path}[${i}]`, w));
        return;
      case "tuple":
        this.encodeItems(type.items, value, path, w);
        return;
      case "map":
        if (!(value instanceof Map)) throw new ValueError(path, "a Map", value);
        w.varint(value.size);
        for (const [k, v] of value) {
          this.encode(type.key, k, `${path}.key(${String(k)})`, w);
          this.encode(type.value, v, `${path}[${String(k)}]`, w);
        }
        return;
      case "ref":
        this.encodeNamed(type.name, value, path, w);
        return;
    }
  }

  private integer(kind: string, value: unknown, path: string): bigint {
    const [min, max] = INT_RANGES[kind]!;
    const expected = BIG.has(kind)
      ? `${kind} (a bigint from ${min} to ${max})`
      : `${kind} (an integer number from ${min} to ${max})`;
    let v: bigint;
    if (typeof value === "bigint") v = value;
    else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
    else throw new ValueError(path, expected, value);
    if (v < min || v > max) throw new ValueError(path, expected, value);
    return v;
  }

  private encodeItems(items: Type[], value: unknown, path: string, w: Writer): void {
    if (!Array.isArray(value) || value.length !== items.length) {
      throw new ValueError(path, `an array of ${items.length} items (a tuple)`, value);
    }
    items.forEach((t, i) => this.encode(t, value[i], `${path}.${i}`, w));
  }

  private encodeFields(fields: Field[], value: unknown, path: string, w: Writer): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ValueError(path, `an object with fields ${fields.map((f) => f.name).join(", ")}`, value);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!fields.some((f) => f.name === key)) {
        throw new ValueError(`${path}.${key}`, `no such field (the fields are ${fields.map((f) => f.name).join(", ")})`, record[key]);
      }
    }
    for (const f of fields) this.encode(f.type, record[f.name], `${path}.${f.name}`, w);
  }

  private encodeNamed(name: string, value: unknown, path: string, w: Writer): void {
    const def = this.types[name]!;
    switch (def.kind) {
      case "struct":
        this.encodeFields(def.fields, value, path, w);
        return;
      case "tuple_struct":
        this.encodeItems(def.items, value, path, w);
        return;
      case "newtype_struct":
        this.encode(def.type, value, path, w);
        return;
      case "unit_struct":
        if (value !== null && value !== undefined) throw new ValueError(path, `null (the unit struct ${name})`, value);
        return;
      case "enum": {
        let variantName: string;
        let content: unknown;
        if (typeof value === "string") {
          variantName = value;
          content = undefined;
        } else if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 1) {
          variantName = Object.keys(value)[0]!;
          content = (value as Record<string, unknown>)[variantName];
        } else {
          throw new ValueError(path, `a variant of ${name}: ${def.variants.map(variantHint).join(" | ")}`, value);
        }
        const variant = def.variants.find((v) => v.name === variantName);
        if (!variant) {
          throw new ValueError(path, `a variant of ${name} (${def.variants.map((v) => v.name).join(", ")})`, value);
        }
        if (typeof value === "string" && variant.shape !== "unit") {
          throw new ValueError(path, `${variantHint(variant)} (${variantName} carries data)`, value);
        }
        w.varint(variant.index);
        this.encodeContent(variant, content, `${path}.${variantName}`, w);
        return;
      }
    }
  }

  /** A variant's fields (not its index): nothing, the newtype's value, a tuple's array or a struct's object. */
  encodeContent(variant: Variant, content: unknown, path: string, w: Writer): void {
    switch (variant.shape) {
      case "unit":
        if (content !== null && content !== undefined) throw new ValueError(path, "nothing (a unit variant)", content);
        return;
      case "newtype":
        this.encode(variant.type, content, path, w);
        return;
      case "tuple":
        this.encodeItems(variant.items, content, path, w);
        return;
      case "struct":
        this.encodeFields(variant.fields, content, path, w);
        return;
    }
  }

  decode(type: Type, r: Reader, depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new DecodeError(`a value nests deeper than ${MAX_DEPTH} levels`);
    switch (type.type) {
      case "unit":
        return null;
      case "bool": {
        const b = r.byte();
        if (b > 1) throw new DecodeError(`a bool byte is ${b}, not 0 or 1`);
        return b === 1;
      }
      case "u8":
        return r.byte();
      case "i8":
        return (r.byte() << 24) >> 24;
      case "u16":
        return r.varint32(16);
      case "u32":
        return r.varint32(32);
      case "i16":
      case "i32": {
        const bits = type.type === "i16" ? 16 : 32;
        const u = r.varint32(bits);
        return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
      }
      case "u64":
        return r.varintBig(64);
      case "u128":
        return r.varintBig(128);
      case "i64":
        return r.zigzagBig(64);
      case "i128":
        return r.zigzagBig(128);
      case "f32":
        return r.f32();
      case "f64":
        return r.f64();
      case "char": {
        const s = r.string();
        if ([...s].length !== 1) throw new DecodeError(`a char holds ${[...s].length} characters`);
        return s;
      }
      case "string":
        return r.string();
      case "bytes":
        return new Uint8Array(r.bytesWithLen());
      case "option": {
        const tag = r.byte();
        if (tag === 0) return null;
        if (tag !== 1) throw new DecodeError(`an Option tag is ${tag}, not 0 or 1`);
        return this.decode(type.some, r, depth + 1);
      }
      case "seq": {
        if (type.item.type === "u8") return new Uint8Array(r.bytesWithLen());
        const n = r.len("a seq", isZeroSized(type.item, this.types) ? 0 : 1);
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(this.decode(type.item, r, depth + 1));
        return out;
      }
      case "array": {
        if (type.item.type === "u8") return new Uint8Array(r.raw(type.len, "a byte array"));
        const out: unknown[] = [];
        for (let i = 0; i < type.len; i++) out.push(this.decode(type.item, r, depth + 1));
        return out;
      }
      case "tuple":
        return type.items.map((t) => this.decode(t, r, depth + 1));
      case "map": {
        const n = r.len("a map", 0);
        const out = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.decode(type.key, r, depth + 1);
          out.set(k, this.decode(type.value, r, depth + 1));
        }
        return out;
      }
      case "ref":
        return this.decodeNamed(type.name, r, depth + 1);
    }
  }

  private decodeNamed(name: string, r: Reader, depth: number): unknown {
    const def = this.types[name]!;
    switch (def.kind) {
      case "struct":
        return this.decodeFields(def.fields, r, depth);
      case "tuple_struct":
        return def.items.map((t) => this.decode(t, r, depth));
      case "newtype_struct":
        return this.decode(def.type, r, depth);
      case "unit_struct":
        return null;
      case "enum": {
        const index = r.varint32();
        const variant = def.variants.find((v) => v.index === index);
        if (!variant) throw new DecodeError(`${name} has no variant with index ${index}`);
        if (variant.shape === "unit") return variant.name;
        return { [variant.name]: this.decodeContent(variant, r, depth) };
      }
    }
  }

  private decodeFields(fields: Field[], r: Reader, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of fields) out[f.name] = this.decode(f.type, r, depth);
    return out;
  }

  /** A variant's fields, in the shape `encodeContent` takes. */
  decodeContent(variant: Variant, r: Reader, depth = 0): unknown {
    switch (variant.shape) {
      case "unit":
        return undefined;
      case "newtype":
        return this.decode(variant.type, r, depth + 1);
      case "tuple":
        return variant.items.map((t) => this.decode(t, r, depth + 1));
      case "struct":
        return this.decodeFields(variant.fields, r, depth + 1);
    }
  }
}

function variantHint(v: Variant): string {
  switch (v.shape) {
    case "unit":
      return JSON.stringify(v.name);
    case "newtype":
      return `{ ${v.name}: value }`;
    case "tuple":
      return `{ ${v.name}: [${v.items.length} items] }`;
    case "struct":
      return `{ ${v.name}: { ${v.fields.map((f) => f.name).join(", ")} } }`;
  }
}

/** Whether a value of `type` may take no bytes (so a length cannot be checked against what is left). */
function isZeroSized(type: Type, types: Record<string, TypeDef>, seen = new Set<string>()): boolean {
  switch (type.type) {
    case "unit":
      return true;
    case "tuple":
      return type.items.every((t) => isZeroSized(t, types, seen));
    case "array":
      return type.len === 0 || isZeroSized(type.item, types, seen);
    case "ref": {
      if (seen.has(type.name)) return false;
      seen.add(type.name);
      const def = types[type.name];
      if (!def) return false;
      if (def.kind === "unit_struct") return true;
      if (def.kind === "struct") return def.fields.every((f) => isZeroSized(f.type, types, seen));
      if (def.kind === "tuple_struct") return def.items.every((t) => isZeroSized(t, types, seen));
      if (def.kind === "newtype_struct") return isZeroSized(def.type, types, seen);
      return false;
    }
    default:
      return false;
  }
}

/** A decoded event: the variant and its payload (see the module doc for the shapes). */
export interface DecodedVariant {
  variant: EventVariant;
  payload: unknown;
}

/**
 * A loaded, checked schema document: an event enum's variants, the types
 * they use, and its id. `E` is the generated event map (`netsock-types`),
 * which types `emit`, `request` and `on` at compile time.
 */
export class Schema<E extends EventMap = AnyEvents> {
  readonly name: string;
  /** The schema text, whose FNV-1a 64 hash is `id`. */
  readonly text: string;
  /** The `SchemaId` sent in the handshake. */
  readonly id: bigint;
  readonly variants: readonly EventVariant[];
  readonly codec: Codec;
  private readonly byName = new Map<string, EventVariant>();
  private readonly byIndex = new Map<number, EventVariant>();
  /** Never set: carries the event map type. */
  declare readonly events?: E;

  constructor(doc: SchemaDocument) {
    checkDocument(doc);
    this.name = doc.name;
    this.text = doc.schema_text;
    this.id = fnv1a64(doc.schema_text);
    this.variants = doc.variants;
    this.codec = new Codec(doc.types);
    for (const v of doc.variants) {
      this.byName.set(v.name, v);
      this.byIndex.set(v.index, v);
    }
  }

  /** The variant called `name`, or a `ValueError` listing the ones there are. */
  variant(name: string): EventVariant {
    const v = this.byName.get(name);
    if (!v) {
      throw new ValueError(this.name, `a variant name (${[...this.byName.keys()].join(", ")})`, name);
    }
    return v;
  }

  /** The postcard bytes of variant `name` with `payload`, checked against the schema. */
  encodeVariant(name: string, payload: unknown): Uint8Array {
    const v = this.variant(name);
    const w = new Writer();
    w.varint(v.index);
    this.codec.encodeContent(v, payload, name, w);
    return w.bytes();
  }

  /** The variant and payload in `bytes`; a `DecodeError` if they do not fit the schema. */
  decodeVariant(bytes: Uint8Array): DecodedVariant {
    const r = new Reader(bytes);
    const index = r.varint32();
    const variant = this.byIndex.get(index);
    if (!variant) throw new DecodeError(`${this.name} has no variant with index ${index}`);
    return { variant, payload: this.codec.decodeContent(variant, r) };
  }

  /** The postcard bytes of a reply to request variant `v`. */
  encodeResponse(v: EventVariant, value: unknown): Uint8Array {
    const w = new Writer();
    this.codec.encode(v.response ?? { type: "unit" }, value, `${v.name} reply`, w);
    return w.bytes();
  }

  decodeResponse(v: EventVariant, bytes: Uint8Array): unknown {
    return this.codec.decode(v.response ?? { type: "unit" }, new Reader(bytes));
  }

  /** One item of stream request variant `v`'s stream; a `DecodeError` if it does not fit. */
  decodeItem(v: EventVariant, bytes: Uint8Array): unknown {
    if (!v.stream) throw new DecodeError(`${v.name} is not a stream request`);
    return this.codec.decode(v.stream, new Reader(bytes));
  }
}

/**
 * Loads a schema JSON document (its text, or the parsed object), checks it
 * and returns the {@link Schema}. Give the generated event map as `E` for
 * compile-time checks: `loadSchema<Interop>(json)`.
 */
export function loadSchema<E extends EventMap = AnyEvents>(json: string | object): Schema<E> {
  let doc: unknown;
  if (typeof json === "string") {
    try {
      doc = JSON.parse(json);
    } catch (e) {
      throw new SchemaError(`the schema is not valid JSON: ${(e as Error).message}`);
    }
  } else {
    doc = json;
  }
  return new Schema<E>(doc as SchemaDocument);
}

function checkDocument(doc: SchemaDocument): void {
  const fail = (what: string): never => {
    throw new SchemaError(`invalid schema document: ${what}`);
  };
  if (typeof doc !== "object" || doc === null) fail("not an object");
  if (doc.format !== 1) fail(`format ${String(doc.format)} is not 1`);
  if (typeof doc.name !== "string") fail("no name");
  if (typeof doc.schema_text !== "string") fail("no schema_text");
  if (!Array.isArray(doc.variants)) fail("no variants");
  if (typeof doc.types !== "object" || doc.types === null) fail("no types");
  const id = fnv1a64(doc.schema_text).toString(16).padStart(16, "0");
  if (doc.schema_id !== id) {
    fail(`schema_id ${String(doc.schema_id)} is not the FNV-1a 64 of schema_text (${id})`);
  }
  const checkType = (t: Type, where: string): void => {
    if (typeof t !== "object" || t === null || typeof t.type !== "string") fail(`${where}: not a type`);
    switch (t.type) {
      case "option":
        return checkType(t.some, where);
      case "seq":
        return checkType(t.item, where);
      case "array":
        if (!Number.isInteger(t.len) || t.len < 0) fail(`${where}: array without a len`);
        return checkType(t.item, where);
      case "tuple":
        if (!Array.isArray(t.items)) fail(`${where}: tuple without items`);
        return t.items.forEach((i) => checkType(i, where));
      case "map":
        checkType(t.key, where);
        return checkType(t.value, where);
      case "ref":
        if (!Object.prototype.hasOwnProperty.call(doc.types, t.name)) fail(`${where}: no type named ${t.name}`);
        return;
      default:
        if (!PRIMITIVES.has(t.type)) fail(`${where}: unknown type ${JSON.stringify(t.type)}`);
    }
  };
  const checkVariant = (v: Variant, where: string): void => {
    if (typeof v.name !== "string" || !Number.isInteger(v.index)) fail(`${where}: a variant without name or index`);
    const at = `${where}.${v.name}`;
    switch (v.shape) {
      case "unit":
        return;
      case "newtype":
        return checkType(v.type, at);
      case "tuple":
        if (!Array.isArray(v.items)) fail(`${at}: no items`);
        return v.items.forEach((t) => checkType(t, at));
      case "struct":
        if (!Array.isArray(v.fields)) fail(`${at}: no fields`);
        return v.fields.forEach((f) => checkType(f.type, `${at}.${f.name}`));
      default:
        fail(`${at}: unknown shape ${JSON.stringify((v as { shape: unknown }).shape)}`);
    }
  };
  for (const v of doc.variants) {
    checkVariant(v, doc.name);
    const at = `${doc.name}.${v.name}`;
    const stream = v.stream ?? null;
    const upload = v.upload ?? null;
    if (!v.request && (stream !== null || upload !== null)) {
      fail(`${at}: a \`${stream !== null ? "stream" : "upload"}\` type on a variant that is not a request`);
    }
    if (stream !== null && v.response !== null) fail(`${at}: a request has a \`response\` or a \`stream\` type, not both`);
    if (v.request && v.response !== null) checkType(v.response, `${at} response`);
    if (stream !== null) checkType(stream, `${at} stream`);
    if (upload !== null) checkType(upload, `${at} upload`);
  }
  for (const [name, def] of Object.entries(doc.types)) {
    switch (def.kind) {
      case "struct":
        def.fields.forEach((f) => checkType(f.type, `${name}.${f.name}`));
        break;
      case "tuple_struct":
        def.items.forEach((t) => checkType(t, name));
        break;
      case "newtype_struct":
        checkType(def.type, name);
        break;
      case "unit_struct":
        break;
      case "enum":
        def.variants.forEach((v) => checkVariant(v, name));
        break;
      default:
        fail(`${name}: unknown kind ${JSON.stringify((def as { kind: unknown }).kind)}`);
    }
  }
}
