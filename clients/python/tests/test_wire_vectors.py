"""The book's wire vectors (book/src/wire-vectors.txt): every frame decodes
to the header and payload written there (rendered in Rust's Debug
notation, as the file writes them), and encodes back to the same bytes;
every schema text hashes to its id."""

from __future__ import annotations

import json
import unittest
from typing import Any

import netsock
from netsock.codec import TypeTable
from netsock.frames import Field, Header, Tagged, VariantSpec, decode_body, encode_frame
from netsock.postcard import Reader
from netsock.schema import Schema

from support import WIRE_VECTORS

SUM_API = Schema.from_json(
    {
        "format": 1,
        "name": "SumApi",
        "schema_text": "SumApi{Sum(Vec<i64>)->i64}",
        "schema_id": "76548073a8190951",
        "variants": [
            {"index": 0, "name": "Sum", "shape": "newtype", "type": {"type": "seq", "item": {"type": "i64"}},
             "request": True, "response": {"type": "i64"}}
        ],
        "types": {},
    }
)
CHAT = Schema.from_json(
    {
        "format": 1,
        "name": "Chat",
        "schema_text": "Chat{Message{text:String,total_clients:usize}}",
        "schema_id": "d333250172d8d489",
        "variants": [
            {"index": 0, "name": "Message", "shape": "struct",
             "fields": [{"name": "text", "type": {"type": "string"}},
                        {"name": "total_clients", "type": {"type": "u64"}}],
             "request": False, "response": None}
        ],
        "types": {},
    }
)


def vectors() -> list[dict[str, str]]:
    """The blocks of the file, as dicts of their fields."""
    blocks, block = [], {}
    for line in WIRE_VECTORS.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        key, _, value = line.partition(":")
        block[key] = value.strip()
    return blocks


# --- Rust's Debug notation, for what frames.py decodes --------------------------------


def debug_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def debug_field(f: Field, value: Any) -> str:
    if f.name == "SchemaId":
        return f"SchemaId({value:016x})"
    if f.name == "(SchemaId, SchemaId)":
        return f"(SchemaId({value[0]:016x}), SchemaId({value[1]:016x}))"
    if f.name == "(String, String)":
        return f"({debug_str(value[0])}, {debug_str(value[1])})"
    if f.name == "String":
        return debug_str(value)
    if f.name == "bool":
        return "true" if value else "false"
    if f.name == "[u8; 4]":
        return "[" + ", ".join(str(b) for b in value) + "]"
    if f.name == "Option<Vec<u8>>":
        return "None" if value is None else "Some([" + ", ".join(str(b) for b in value) + "])"
    if f.name == "SessionToken":
        return "SessionToken(..)"
    if f.name == "Option<RemoteError>":
        return "None" if value is None else f"Some({debug_tagged(value)})"
    if isinstance(value, Tagged):
        return debug_tagged(value)
    return str(value)


def debug_tagged(value: Tagged) -> str:
    spec = value.spec
    if not spec.fields:
        return value.kind
    parts = [(name, debug_field(f, value.fields[name])) for name, f in spec.fields]
    if spec.tuple_like:
        return f"{value.kind}({', '.join(p for _, p in parts)})"
    inner = ", ".join(f"{n}: {p}" for n, p in parts)
    if value.kind == "Hello":  # Header::Hello(Hello { .. }): a newtype around the struct
        return f"Hello(Hello {{ {inner} }})"
    return f"{value.kind} {{ {inner} }}"


def debug_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(debug_value(v) for v in value) + "]"
    if isinstance(value, str):
        return debug_str(value)
    return str(value)


# The session payloads of Hello and Welcome (the package never asks for a
# session; these only read the book's vectors).
TOKEN = Field("SessionToken", lambda out, v: out.extend(v), lambda r: r.take(16))
U64 = Field("u64", netsock.postcard.write_varint, lambda r: r.varint(64))


class SessionAsk(Tagged):
    VARIANTS = (VariantSpec("New"), VariantSpec("Resume", (("token", TOKEN), ("received", U64))))


class LostReason(Tagged):
    VARIANTS = (
        VariantSpec("Unknown"),
        VariantSpec("NotYours"),
        VariantSpec("Overflowed"),
        VariantSpec("Expired", (("received", U64), ("sent", U64))),
    )


class Resumption(Tagged):
    VARIANTS = (
        VariantSpec("New"),
        VariantSpec("Resumed", (("received", U64),)),
        VariantSpec("Lost", (("reason", Field("LostReason", lambda out, v: v.write(out), LostReason.read)),), tuple_like=True),
    )


def debug_session(header: Header, payload: bytes) -> str:
    r = Reader(payload)
    if header.kind == "Hello":
        text = f"SessionAsk: {debug_tagged(SessionAsk.read(r))}"
    else:
        token, window = TOKEN.read(r), U64.read(r)
        assert len(token) == 16
        text = (
            f"SessionGrant: SessionGrant {{ token: SessionToken(..), window_ms: {window}, "
            f"resumption: {debug_tagged(Resumption.read(r))} }}"
        )
    assert not r.rest(), "trailing bytes after the session payload"
    return text


def debug_payload(header: Header, payload: bytes, type_name: str) -> str:
    """The payload as the file writes it: `TYPE: VALUE`, TYPE the one the
    vector names (the bytes alone do not say)."""
    if header.kind in ("Hello", "Welcome") and payload:
        return debug_session(header, payload)
    if not header.spec.payload:
        return "-"
    if type_name == "i64":
        return f"i64: {SUM_API.variants[0].decode_response(payload)}"
    schema = {"SumApi": SUM_API, "Chat": CHAT}[type_name]
    variant, values = schema.decode(payload)
    if variant.shape == "struct":
        inner = ", ".join(f"{n}: {debug_value(v)}" for n, v in zip(variant.field_names, values))
        return f"{schema.name}: {variant.name} {{ {inner} }}"
    return f"{schema.name}: {variant.name}({', '.join(debug_value(v) for v in values)})"


class WireVectors(unittest.TestCase):
    def test_there_are_vectors(self) -> None:
        frames = [v for v in vectors() if "frame" in v]
        self.assertGreaterEqual(len(frames), 25)
        kinds = {decode_body(bytes.fromhex(v["frame"])[4:])[0].kind for v in frames}
        # Every kind has a vector, the upload kinds (16 to 18) included.
        self.assertEqual(kinds, {v.name for v in Header.VARIANTS})

    def test_schema_ids(self) -> None:
        for v in vectors():
            if "schema" in v:
                with self.subTest(v["name"]):
                    self.assertEqual(f"{netsock.schema_id(v['schema']):016x}", v["id"])

    def test_every_frame_decodes_as_written_and_encodes_back(self) -> None:
        for v in vectors():
            if "frame" not in v:
                continue
            with self.subTest(v["name"]):
                frame = bytes.fromhex(v["frame"])
                self.assertEqual(int.from_bytes(frame[:4], "big"), len(frame) - 4)
                header, payload = decode_body(frame[4:])
                self.assertEqual(debug_tagged(header), v["header"])
                type_name = v["payload"].partition(":")[0]
                self.assertEqual(debug_payload(header, payload, type_name), v["payload"])
                self.assertEqual(encode_frame(header, payload), frame)

    def test_payloads_encode_as_written(self) -> None:
        wanted = {
            "request-sum": SUM_API.encode("Sum", [1, 2, 3, 4, 5, 6])[1],
            "request-sum-negative": SUM_API.encode("Sum", [-1, 1000000])[1],
            "event-chat": CHAT.encode("Message", text="hello", total_clients=1)[1],
            "response-sum": SUM_API.variants[0].encode_response(21),
            "response-negative": SUM_API.variants[0].encode_response(-150),
        }
        by_name = {v["name"]: v for v in vectors()}
        for name, payload in wanted.items():
            with self.subTest(name):
                _, decoded = decode_body(bytes.fromhex(by_name[name]["frame"])[4:])
                self.assertEqual(decoded, payload)

    def test_unknown_kinds_and_reasons_do_not_decode(self) -> None:
        for body in (b"\x13", b"\x02\x08", b"\x0a\x05", b"\x06\x01\x08", b"\x0c\x01\x01\x08", b"\xff\xff\xff\xff\x7f"):
            with self.subTest(body.hex()), self.assertRaises(netsock.DecodeError):
                decode_body(body)


# --- book/src/wire-vectors.json: the same and more, written by the Rust side ------------

WIRE_VECTORS_JSON = WIRE_VECTORS.with_suffix(".json")


def from_json(t: dict[str, Any], value: Any, table: TypeTable) -> Any:
    """A value as the JSON vectors write it (see their `conventions`) as
    this package's Python value of type `t`."""
    kind = t["type"]
    if kind in ("u64", "i64", "u128", "i128"):
        return int(value)
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind in ("f32", "f64"):
        return float(value)
    if kind == "option":
        return None if value is None else from_json(t["some"], value, table)
    if kind in ("seq", "array"):
        return [from_json(t["item"], v, table) for v in value]
    if kind == "tuple":
        return tuple(from_json(i, v, table) for i, v in zip(t["items"], value))
    if kind == "map":
        return {from_json(t["key"], k, table): from_json(t["value"], v, table) for k, v in value}
    if kind == "ref":
        return named_from_json(table.raw(t["name"]), value, table)
    return value


def fields_from_json(shape: dict[str, Any], value: Any, table: TypeTable) -> Any:
    s = shape.get("shape") or shape.get("kind")
    if s in ("unit", "unit_struct"):
        return None
    if s in ("newtype", "newtype_struct"):
        return from_json(shape["type"], value, table)
    if s in ("tuple", "tuple_struct"):
        return tuple(from_json(i, v, table) for i, v in zip(shape["items"], value))
    return {f["name"]: from_json(f["type"], value[f["name"]], table) for f in shape["fields"]}


def named_from_json(definition: dict[str, Any], value: Any, table: TypeTable) -> Any:
    if definition["kind"] != "enum":
        return fields_from_json(definition, value, table)
    ((name, inner),) = value.items()
    variant = next(v for v in definition["variants"] if v["name"] == name)
    return name if variant["shape"] == "unit" else {name: fields_from_json(variant, inner, table)}


def tagged_value(value: Any) -> Any:
    """A header decoded by frames.py in the codec's form of an enum value."""
    if isinstance(value, Tagged):
        spec = value.spec
        if not spec.fields:
            return value.kind
        fields = {n: tagged_value(v) for n, v in value.fields.items()}
        if spec.tuple_like:
            return {value.kind: next(iter(fields.values()))}
        return {value.kind: fields}
    if isinstance(value, bytes):
        return list(value)
    return value


class JsonWireVectors(unittest.TestCase):
    """book/src/wire-vectors.json, when the Rust side has written it."""

    def setUp(self) -> None:
        if not WIRE_VECTORS_JSON.exists():
            import sys

            why = f"{WIRE_VECTORS_JSON.name} is not in the book yet"
            print(f"\nskipped {self.id()}: {why}", file=sys.stderr)
            self.skipTest(why)
        self.doc = json.loads(WIRE_VECTORS_JSON.read_text(encoding="utf-8"))
        self.table = TypeTable(self.doc["types"])

    def test_schema_ids(self) -> None:
        for v in self.doc["schemas"]:
            self.assertEqual(f"{netsock.schema_id(v['schema_text']):016x}", v["schema_id"])

    def test_values_encode_and_decode_as_written(self) -> None:
        for v in self.doc["values"]:
            with self.subTest(v["description"]):
                codec = self.table.codec(v["type"], "test")
                value = from_json(v["type"], v["value"], self.table)
                out = bytearray()
                codec.encode(value, out, "value")
                self.assertEqual(out.hex(" "), v["hex"])
                self.assertEqual(codec.decode(Reader(bytes.fromhex(v["hex"]))), value)

    def test_frames_decode_as_written_and_encode_back(self) -> None:
        header_type = {"type": "ref", "name": "Header"}
        for f in self.doc["frames"]:
            with self.subTest(f["description"]):
                frame = bytes.fromhex(f["hex"])
                header, payload = decode_body(frame[4:])
                self.assertEqual(encode_frame(header, payload), frame)
                wanted = from_json(header_type, f["header"], self.table)
                self.assertEqual(tagged_value(header), wanted)
                if f.get("payload") is None:
                    self.assertEqual(payload, b"")
                    continue
                t = f["payload"]["type"]
                value = from_json(t, f["payload"]["value"], self.table)
                codec = self.table.codec(t, "payload")
                out = bytearray()
                codec.encode(value, out, "payload")
                self.assertEqual(bytes(out), payload)
                self.assertEqual(codec.decode(Reader(payload)), value)


if __name__ == "__main__":
    unittest.main()
