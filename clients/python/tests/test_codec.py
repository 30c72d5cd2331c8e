"""The schema-driven postcard codec: every type of the format, the
extremes, the errors a user and a peer get."""

from __future__ import annotations

import math
import unittest
from typing import Any

import netsock
from netsock.codec import TypeTable
from netsock.postcard import Reader

from support import interop_schema, sample_shape


def codec(t: dict[str, Any], types: dict[str, Any] | None = None) -> Any:
    return TypeTable(types or {}).codec(t, "test")


def enc(t: dict[str, Any], value: Any, types: dict[str, Any] | None = None) -> bytes:
    out = bytearray()
    codec(t, types).encode(value, out, "v")
    return bytes(out)


def dec(t: dict[str, Any], data: bytes, types: dict[str, Any] | None = None) -> Any:
    r = Reader(data)
    value = codec(t, types).decode(r)
    assert r.remaining() == 0, "bytes left over"
    return value


class Primitives(unittest.TestCase):
    def roundtrip(self, t: str, value: Any, hexbytes: str) -> None:
        ty = {"type": t}
        self.assertEqual(enc(ty, value).hex(" "), hexbytes, f"{t} {value!r}")
        self.assertEqual(dec(ty, bytes.fromhex(hexbytes)), value)

    def test_unsigned_varints_up_to_ten_bytes(self) -> None:
        self.roundtrip("u8", 255, "ff")
        self.roundtrip("u16", 65535, "ff ff 03")
        self.roundtrip("u32", 10000, "90 4e")
        self.roundtrip("u32", 2**32 - 1, "ff ff ff ff 0f")
        self.roundtrip("u64", 300, "ac 02")
        self.roundtrip("u64", 2**64 - 1, "ff ff ff ff ff ff ff ff ff 01")
        self.roundtrip("u128", 2**128 - 1, "ff " * 18 + "03")

    def test_signed_zigzag(self) -> None:
        self.roundtrip("i8", -128, "80")
        self.roundtrip("i8", -1, "ff")
        self.roundtrip("i16", -32768, "ff ff 03")
        self.roundtrip("i32", -1, "01")
        self.roundtrip("i64", 21, "2a")
        self.roundtrip("i64", -150, "ab 02")
        self.roundtrip("i64", -(2**63), "ff ff ff ff ff ff ff ff ff 01")
        self.roundtrip("i64", 2**63 - 1, "fe ff ff ff ff ff ff ff ff 01")
        self.roundtrip("i128", -(2**127), "ff " * 18 + "03")
        self.roundtrip("i128", 2**127 - 1, "fe " + "ff " * 17 + "03")

    def test_floats_bool_char_unit(self) -> None:
        self.roundtrip("f32", 3.25, "00 00 50 40")
        self.roundtrip("f64", -1.5, "00 00 00 00 00 00 f8 bf")
        self.roundtrip("bool", True, "01")
        self.roundtrip("bool", False, "00")
        self.roundtrip("char", "é", "02 c3 a9")
        self.roundtrip("char", "🌍", "04 f0 9f 8c 8d")
        self.roundtrip("unit", None, "")
        self.assertTrue(math.isnan(dec({"type": "f64"}, enc({"type": "f64"}, math.nan))))
        self.assertEqual(dec({"type": "f32"}, enc({"type": "f32"}, math.inf)), math.inf)

    def test_strings_and_bytes(self) -> None:
        self.roundtrip("string", "", "00")
        self.roundtrip("string", "grüße", "07 67 72 c3 bc c3 9f 65")
        self.roundtrip("bytes", b"\x00\xff", "02 00 ff")
        self.assertEqual(enc({"type": "bytes"}, bytearray(b"ab")), b"\x02ab")


class Composites(unittest.TestCase):
    def test_option_seq_array_tuple_map(self) -> None:
        opt = {"type": "option", "some": {"type": "u16"}}
        self.assertEqual(enc(opt, None), b"\x00")
        self.assertEqual(enc(opt, 300), b"\x01\xac\x02")
        self.assertEqual(dec(opt, b"\x01\xac\x02"), 300)
        seq = {"type": "seq", "item": {"type": "i64"}}
        self.assertEqual(enc(seq, [1, 2, 3]).hex(), "03020406")
        self.assertEqual(enc(seq, (1, 2, 3)).hex(), "03020406")
        self.assertEqual(dec(seq, bytes.fromhex("03020406")), [1, 2, 3])
        arr = {"type": "array", "item": {"type": "u8"}, "len": 4}
        self.assertEqual(enc(arr, [78, 83, 67, 75]), b"NSCK")
        self.assertEqual(dec(arr, b"NSCK"), [78, 83, 67, 75])
        tup = {"type": "tuple", "items": [{"type": "i8"}, {"type": "string"}]}
        self.assertEqual(enc(tup, (-1, "p")), b"\xff\x01p")
        self.assertEqual(dec(tup, b"\xff\x01p"), (-1, "p"))
        mp = {"type": "map", "key": {"type": "string"}, "value": {"type": "u32"}}
        self.assertEqual(enc(mp, {"a": 1, "b": 300}).hex(), "020161010162ac02")
        self.assertEqual(dec(mp, bytes.fromhex("020161010162ac02")), {"a": 1, "b": 300})

    def test_named_types(self) -> None:
        types = {
            "Point": {"kind": "struct", "fields": [{"name": "x", "type": {"type": "i32"}}]},
            "Pair": {"kind": "tuple_struct", "items": [{"type": "u8"}, {"type": "u8"}]},
            "Meters": {"kind": "newtype_struct", "type": {"type": "f64"}},
            "Marker": {"kind": "unit_struct"},
            "Tree": {
                "kind": "enum",
                "variants": [
                    {"index": 0, "name": "Leaf", "shape": "unit"},
                    {"index": 1, "name": "Node", "shape": "tuple",
                     "items": [{"type": "ref", "name": "Tree"}, {"type": "ref", "name": "Tree"}]},
                ],
            },
        }
        ref = lambda name: {"type": "ref", "name": name}
        self.assertEqual(enc(ref("Point"), {"x": -1}, types), b"\x01")
        self.assertEqual(dec(ref("Point"), b"\x01", types), {"x": -1})
        self.assertEqual(enc(ref("Pair"), (1, 2), types), b"\x01\x02")
        self.assertEqual(enc(ref("Meters"), 1.0, types), bytes.fromhex("000000000000f03f"))
        self.assertEqual(enc(ref("Marker"), None, types), b"")
        tree = {"Node": ("Leaf", {"Node": ("Leaf", "Leaf")})}
        self.assertEqual(enc(ref("Tree"), tree, types).hex(), "0100010000")
        self.assertEqual(dec(ref("Tree"), bytes.fromhex("0100010000"), types), tree)

    def test_a_dataclass_is_a_struct(self) -> None:
        from dataclasses import dataclass

        @dataclass
        class P:
            x: int

        types = {"P": {"kind": "struct", "fields": [{"name": "x", "type": {"type": "i32"}}]}}
        self.assertEqual(enc({"type": "ref", "name": "P"}, P(5), types), b"\x0a")


class InteropSchema(unittest.TestCase):
    def setUp(self) -> None:
        self.schema = interop_schema()

    def test_the_schema_id_is_the_hash_of_the_text(self) -> None:
        self.assertEqual(
            self.schema.text,
            "Interop{Note(String),Point{x:i32,y:i32},Sum(Vec<i64>)->i64,Greet{name:String}->String,"
            "Mirror(Shape)->Shape,Slow{ms:u32}->(),Fail->bool}",
        )
        self.assertEqual(self.schema.id, netsock.schema_id(self.schema.text))
        self.assertEqual([v.name for v in self.schema.variants],
                         ["Note", "Point", "Sum", "Greet", "Mirror", "Slow", "Fail"])

    def test_variants_by_position_or_name(self) -> None:
        _, a = self.schema.encode("Point", 2, 40)
        _, b = self.schema.encode("Point", x=2, y=40)
        _, c = self.schema.encode("Point", 2, y=40)
        self.assertEqual(a, b"\x01\x04\x50")
        self.assertEqual(a, b)
        self.assertEqual(a, c)
        self.assertEqual(self.schema.encode("Fail")[1], b"\x06")
        variant, values = self.schema.decode(a)
        self.assertEqual((variant.name, values, variant.value(values)), ("Point", [2, 40], {"x": 2, "y": 40}))

    def test_the_sample_shape_round_trips(self) -> None:
        shape = sample_shape()
        variant, payload = self.schema.encode("Mirror", shape)
        self.assertEqual(variant.decode_response(variant.encode_response(shape)), shape)
        decoded_variant, values = self.schema.decode(payload)
        self.assertEqual(decoded_variant.name, "Mirror")
        self.assertEqual(values[0], shape)
        # Bytes are accepted where the schema says Vec<u8>.
        self.assertEqual(self.schema.encode("Mirror", {**shape, "bytes": bytes([0, 1, 127, 128, 255])})[1], payload)


class ValidationErrors(unittest.TestCase):
    """A value that does not fit is refused before anything is sent, with
    the place and the type expected."""

    def setUp(self) -> None:
        self.schema = interop_schema()

    def message(self, *args: Any, **kwargs: Any) -> str:
        with self.assertRaises(netsock.ValidationError) as caught:
            self.schema.encode(*args, **kwargs)
        return str(caught.exception)

    def test_field_and_type_are_named(self) -> None:
        self.assertEqual(self.message("Point", x="a", y=1), "Point.x: expected i32, got str 'a'")
        self.assertIn("Point.y: expected i32, got int 2147483648 (out of range -2147483648..=2147483647)",
                      self.message("Point", 1, 2**31))
        self.assertIn("Point.y: expected i32", self.message("Point", x=1))
        self.assertIn("missing", self.message("Point", x=1))
        self.assertIn("Point has no field 'z'", self.message("Point", x=1, y=2, z=3))
        self.assertIn("Sum.0[1]: expected i64, got str", self.message("Sum", [1, "2"]))
        self.assertIn("Sum takes 1 values, got 2", self.message("Sum", [1], [2]))
        self.assertIn("Point.x: expected i32, got bool True", self.message("Point", True, 1))
        self.assertIn("a variant of Interop (Note, Point", self.message("Nope"))

    def test_nested_places(self) -> None:
        shape = sample_shape()
        self.assertIn("Mirror.0.counts['b']: expected u32, got int -1",
                      self.message("Mirror", {**shape, "counts": {"a": 1, "b": -1}}))
        self.assertIn("Mirror.0.kinds[1].Wrapped.0: expected u32",
                      self.message("Mirror", {**shape, "kinds": ["Plain", {"Wrapped": "x"}]}))
        self.assertIn("Kind has no variant 'Other'", self.message("Mirror", {**shape, "kind": "Other"}))
        self.assertIn("Mirror.0.letter: expected char", self.message("Mirror", {**shape, "letter": "ab"}))
        self.assertIn("Mirror.0.pair: expected (i8, u128)", self.message("Mirror", {**shape, "pair": (1,)}))
        self.assertIn("Mirror.0.flag: expected bool, got int 1", self.message("Mirror", {**shape, "flag": 1}))
        self.assertIn("Mirror.0.small: expected u8, got bool", self.message("Mirror", {**shape, "small": True}))
        self.assertIn("Mirror.0.single: expected f32", self.message("Mirror", {**shape, "single": 1e300}))
        no_nothing = dict(shape)
        del no_nothing["nothing"]
        self.assertIn("Mirror.0.nothing: expected ()", self.message("Mirror", no_nothing))


class DecodeErrors(unittest.TestCase):
    """Bytes from a peer that do not decode give a DecodeError, nothing else."""

    def setUp(self) -> None:
        self.schema = interop_schema()

    def bad(self, payload: bytes, needle: str) -> None:
        with self.assertRaises(netsock.DecodeError) as caught:
            self.schema.decode(payload)
        self.assertIn(needle, str(caught.exception))

    def test_garbage(self) -> None:
        self.bad(b"", "ends too early")
        self.bad(b"\x07", "Interop has no variant with index 7")
        self.bad(b"\x00\x05ab", "a length of 5 runs past the end of the data (2 bytes left)")
        self.bad(b"\x00\x02\xff\xfe", "invalid UTF-8")
        self.bad(b"\x01" + b"\xff" * 6, "varint too long for a u32")
        self.bad(b"\x01\xff\xff\xff\xff\x7f\x00", "out of range")
        self.bad(b"\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "runs past the end")
        self.bad(b"\x80\x80\x80\x80\x80\x80", "varint too long")

    def test_random_bytes_never_raise_anything_else(self) -> None:
        import random

        rng = random.Random(20)
        shape_payload = self.schema.encode("Mirror", sample_shape())[1]
        for _ in range(3000):
            data = bytearray(shape_payload)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = data[: rng.randint(0, len(data))]
            try:
                self.schema.decode(bytes(data))
            except netsock.DecodeError:
                pass

    def test_deep_nesting_is_a_decode_error(self) -> None:
        types = {
            "Tree": {"kind": "enum", "variants": [
                {"index": 0, "name": "Leaf", "shape": "unit"},
                {"index": 1, "name": "Node", "shape": "newtype", "type": {"type": "ref", "name": "Tree"}},
            ]}
        }
        doc = {
            "format": 1, "name": "T", "schema_text": "T{A(Tree)}",
            "schema_id": f"{netsock.schema_id('T{A(Tree)}'):016x}",
            "variants": [{"index": 0, "name": "A", "shape": "newtype", "type": {"type": "ref", "name": "Tree"},
                          "request": False, "response": None}],
            "types": types,
        }
        schema = netsock.Schema.from_json(doc)
        with self.assertRaises(netsock.DecodeError) as caught:
            schema.decode(b"\x00" + b"\x01" * 100000 + b"\x00")
        self.assertIn("nested too deeply", str(caught.exception))


class SchemaDocuments(unittest.TestCase):
    def doc(self, **changes: Any) -> dict[str, Any]:
        import json

        from support import FIXTURE

        doc = json.loads(FIXTURE.read_text())
        doc.update(changes)
        return doc

    def test_a_wrong_id_is_refused(self) -> None:
        with self.assertRaises(netsock.SchemaError) as caught:
            netsock.Schema.from_json(self.doc(schema_id="0123456789abcdef"))
        self.assertIn("not the hash of schema_text (27cb21a1f7224d66)", str(caught.exception))

    def test_unknown_format_and_types(self) -> None:
        with self.assertRaises(netsock.SchemaError):
            netsock.Schema.from_json(self.doc(format=2))
        bad_types = self.doc()
        bad_types["types"]["Shape"]["fields"][0]["type"] = {"type": "u256"}
        with self.assertRaises(netsock.SchemaError) as caught:
            netsock.Schema.from_json(bad_types)
        self.assertIn("types.Shape.small: unknown type 'u256'", str(caught.exception))
        dangling = self.doc()
        del dangling["types"]["Kind"]
        with self.assertRaises(netsock.SchemaError) as caught:
            netsock.Schema.from_json(dangling)
        self.assertIn("'Kind', which `types` does not define", str(caught.exception))

    def test_unknown_keys_are_ignored(self) -> None:
        doc = self.doc(extra=1)
        doc["variants"][0]["stream"] = None
        self.assertEqual(netsock.Schema.from_json(doc).name, "Interop")


if __name__ == "__main__":
    unittest.main()
