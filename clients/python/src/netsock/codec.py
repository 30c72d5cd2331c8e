"""The postcard codec, driven by the schema's types.

Each type of a schema JSON document becomes a :class:`Codec` that checks a
Python value against the type and writes it (:meth:`Codec.encode`), and
reads it back (:meth:`Codec.decode`). How Rust values look in Python:

============================  ==================================================
schema type                   Python value
============================  ==================================================
``u8`` ... ``i128``           ``int`` (range-checked; ``bool`` is refused)
``f32``, ``f64``              ``float`` (an ``int`` is accepted)
``bool``                      ``bool``
``char``                      a one-character ``str``
``string``                    ``str``
``bytes``                     ``bytes`` (``bytearray``, ``memoryview`` accepted)
``unit``, unit struct         ``None``
``option``                    ``None`` or the value
``seq``                       ``list`` (any sequence but ``str``/``bytes`` accepted)
``array``                     ``list`` of exactly ``len`` items
``tuple``, tuple struct       ``tuple`` (a ``list`` accepted)
``map``                       ``dict``
newtype struct                the inner value
struct                        ``dict`` of field name to value (or any object with
                              those attributes, such as a dataclass)
enum                          as serde_json writes it: ``"Plain"`` for a unit
                              variant, ``{"Wrapped": 7}``, ``{"Pair": (-1, "p")}``,
                              ``{"Named": {"z": "z"}}``
============================  ==================================================

Decoding gives the first form of each row. Errors name the place and the
expected type: :class:`~netsock.ValidationError` when encoding,
:class:`~netsock.DecodeError` when decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from .errors import DecodeError, SchemaError, ValidationError
from .postcard import Reader, write_bytes, write_varint, write_zigzag

__all__ = ["Codec", "VariantCodec", "TypeTable"]


class Codec:
    """A schema type: checks, encodes and decodes its values."""

    name: str = "?"
    """The type as Rust would write it, for messages: ``Option<String>``."""
    min_size: int = 0
    """The fewest bytes a value takes (to bound counts read from a peer)."""

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        """Checks ``value`` and appends its encoding; ``path`` names it in errors."""
        raise NotImplementedError

    def decode(self, r: Reader) -> Any:
        """Reads one value."""
        raise NotImplementedError

    def fail(self, path: str, value: Any, why: str = "") -> ValidationError:
        """The error for a value that does not fit."""
        return ValidationError(path, self.name, value, why)


class IntCodec(Codec):
    """An integer of 8 to 128 bits: ``u8``/``i8`` one byte, the others
    varints (zigzag for signed ones)."""

    def __init__(self, bits: int, signed: bool) -> None:
        self.bits = bits
        self.signed = signed
        self.name = f"{'i' if signed else 'u'}{bits}"
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        self.min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(path, value)
        if not self.lo <= value <= self.hi:
            raise self.fail(path, value, f"out of range {self.lo}..={self.hi}")
        if self.bits == 8:
            out.append(value & 0xFF)
        elif self.signed:
            write_zigzag(out, value, self.bits)
        else:
            write_varint(out, value)

    def decode(self, r: Reader) -> int:
        if self.bits == 8:
            b = r.byte()
            return b - 256 if self.signed and b >= 128 else b
        if self.signed:
            return r.zigzag(self.bits)
        return r.varint(self.bits)


class FloatCodec(Codec):
    """``f32`` or ``f64``: little-endian IEEE 754."""

    def __init__(self, bits: int) -> None:
        self.name = f"f{bits}"
        self.fmt = "<f" if bits == 32 else "<d"
        self.min_size = bits // 8

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(path, value)
        try:
            out += struct.pack(self.fmt, value)
        except (OverflowError, struct.error):
            raise self.fail(path, value, "out of range") from None

    def decode(self, r: Reader) -> float:
        value: float = struct.unpack(self.fmt, r.take(self.min_size))[0]
        return value


class BoolCodec(Codec):
    name = "bool"
    min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, bool):
            raise self.fail(path, value)
        out.append(1 if value else 0)

    def decode(self, r: Reader) -> bool:
        return r.bool()


class UnitCodec(Codec):
    """``()`` and unit structs: nothing on the wire, ``None`` in Python."""

    def __init__(self, name: str = "()") -> None:
        self.name = name

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if value is not None and value != ():
            raise self.fail(path, value, "write None")

    def decode(self, r: Reader) -> None:
        return None


class StrCodec(Codec):
    name = "String"
    min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, str):
            raise self.fail(path, value)
        try:
            write_bytes(out, value.encode("utf-8"))
        except UnicodeEncodeError:
            raise self.fail(path, value, "not valid Unicode (a lone surrogate?)") from None

    def decode(self, r: Reader) -> str:
        return r.str()


class CharCodec(StrCodec):
    """A ``char``: on the wire as a string of one character."""

    name = "char"

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, str) or len(value) != 1:
            raise self.fail(path, value, "a string of exactly one character")
        super().encode(value, out, path)

    def decode(self, r: Reader) -> str:
        text = r.str()
        if len(text) != 1:
            raise DecodeError(f"a char must be one character, got {len(text)}")
        return text


class BytesCodec(Codec):
    name = "bytes"
    min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise self.fail(path, value)
        write_bytes(out, value)

    def decode(self, r: Reader) -> bytes:
        return r.bytes()


class OptionCodec(Codec):
    def __init__(self, some: Codec) -> None:
        self.some = some
        self.name = f"Option<{some.name}>"
        self.min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.some.encode(value, out, path)

    def decode(self, r: Reader) -> Any:
        return self.some.decode(r) if r.bool() else None


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


class SeqCodec(Codec):
    """``Vec<T>``, slices, sets: a count, then the items."""

    def __init__(self, item: Codec) -> None:
        self.item = item
        self.name = f"Vec<{item.name}>"
        self.min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if isinstance(value, (bytes, bytearray, memoryview)) and self.item.name == "u8":
            write_bytes(out, value)  # a Vec<u8> and a byte string encode alike
            return
        if isinstance(value, (set, frozenset)):
            value = list(value)
        if not _is_sequence(value):
            raise self.fail(path, value, "a list")
        write_varint(out, len(value))
        for i, item in enumerate(value):
            self.item.encode(item, out, f"{path}[{i}]")

    def decode(self, r: Reader) -> list[Any]:
        n = r.count(self.item.min_size)
        return [self.item.decode(r) for _ in range(n)]


class ArrayCodec(Codec):
    """``[T; N]``: exactly N items, no count."""

    def __init__(self, item: Codec, length: int) -> None:
        self.item = item
        self.length = length
        self.name = f"[{item.name}; {length}]"
        self.min_size = item.min_size * length

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not _is_sequence(value) or len(value) != self.length:
            raise self.fail(path, value, f"a list of exactly {self.length} items")
        for i, item in enumerate(value):
            self.item.encode(item, out, f"{path}[{i}]")

    def decode(self, r: Reader) -> list[Any]:
        return [self.item.decode(r) for _ in range(self.length)]


class TupleCodec(Codec):
    """A tuple (or a tuple struct, ``name`` given): the items in order."""

    def __init__(self, items: list[Codec], name: str | None = None) -> None:
        self.items = items
        self.name = name or f"({', '.join(c.name for c in items)}{',' if len(items) == 1 else ''})"
        self.min_size = sum(c.min_size for c in items)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not _is_sequence(value) or len(value) != len(self.items):
            raise self.fail(path, value, f"a tuple of {len(self.items)} items")
        for i, (codec, item) in enumerate(zip(self.items, value)):
            codec.encode(item, out, f"{path}.{i}")

    def decode(self, r: Reader) -> tuple[Any, ...]:
        return tuple(c.decode(r) for c in self.items)


def _hashable(value: Any) -> Any:
    """A decoded map key made hashable: lists become tuples."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        raise DecodeError("a map key that is a struct or map cannot be a Python dict key")
    return value


class MapCodec(Codec):
    """A map: a count, then key, value pairs."""

    def __init__(self, key: Codec, value: Codec) -> None:
        self.key = key
        self.value = value
        self.name = f"Map<{key.name}, {value.name}>"
        self.min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, Mapping):
            raise self.fail(path, value, "a dict")
        write_varint(out, len(value))
        for k, v in value.items():
            self.key.encode(k, out, f"{path} key {k!r}")
            self.value.encode(v, out, f"{path}[{k!r}]")

    def decode(self, r: Reader) -> dict[Any, Any]:
        n = r.count(self.key.min_size + self.value.min_size)
        out: dict[Any, Any] = {}
        for _ in range(n):
            k = _hashable(self.key.decode(r))
            out[k] = self.value.decode(r)
        return out


class StructCodec(Codec):
    """A struct with named fields: a ``dict`` (or an object with the
    fields as attributes) in Python, the fields in order on the wire."""

    def __init__(self, name: str, fields: list[tuple[str, Codec]]) -> None:
        self.name = name
        self.fields = fields
        self.min_size = 0  # computed once the table is resolved

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in {n for n, _ in self.fields}]
            if unknown:
                raise self.fail(path, value, f"{self.name} has no field {unknown[0]!r}")
            get: Callable[[str], Any] = value.__getitem__
            has: Callable[[str], bool] = value.__contains__
        elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
            get = lambda n: getattr(value, n)
            has = lambda n: hasattr(value, n)
        else:
            raise self.fail(path, value, f"a dict with the fields {', '.join(n for n, _ in self.fields)}")
        for n, codec in self.fields:
            if not has(n):
                raise ValidationError(f"{path}.{n}", codec.name, None, "missing")
            codec.encode(get(n), out, f"{path}.{n}")

    def decode(self, r: Reader) -> dict[str, Any]:
        return {n: c.decode(r) for n, c in self.fields}


class VariantCodec:
    """One variant of an enum (a user enum, or the event enum itself):
    its index on the wire, its shape and its fields."""

    def __init__(self, index: int, name: str, shape: str, fields: list[tuple[str | None, Codec]]) -> None:
        self.index = index
        self.name = name
        self.shape = shape
        self.fields = fields

    def signature(self) -> str:
        """The variant as Rust writes it: ``Point { x: i32, y: i32 }``."""
        if self.shape == "unit":
            return self.name
        if self.shape == "struct":
            return f"{self.name} {{ {', '.join(f'{n}: {c.name}' for n, c in self.fields)} }}"
        return f"{self.name}({', '.join(c.name for _, c in self.fields)})"

    def encode_fields(self, values: Sequence[Any], out: bytearray, path: str) -> None:
        """Appends the index, then ``values``, one per field, in order."""
        write_varint(out, self.index)
        for (n, codec), v, i in zip(self.fields, values, range(len(self.fields))):
            codec.encode(v, out, f"{path}.{n if n is not None else i}")

    def decode_fields(self, r: Reader) -> list[Any]:
        """The fields' values, in order (the index already read)."""
        return [c.decode(r) for _, c in self.fields]

    def value(self, fields: list[Any]) -> Any:
        """The fields as one Python value: ``None`` for a unit variant, the
        value of a newtype, a tuple, a dict of a struct."""
        if self.shape == "unit":
            return None
        if self.shape == "newtype":
            return fields[0]
        if self.shape == "struct":
            return {n: v for (n, _), v in zip(self.fields, fields)}
        return tuple(fields)

    def unpack(self, value: Any, path: str) -> list[Any]:
        """The inverse of :meth:`value`: one value per field."""
        if self.shape == "unit":
            if value is not None:
                raise ValidationError(path, self.signature(), value, "a unit variant takes no value")
            return []
        if self.shape == "newtype":
            return [value]
        if self.shape == "struct":
            if not isinstance(value, Mapping):
                raise ValidationError(path, self.signature(), value, "a dict of its fields")
            unknown = [k for k in value if k not in {n for n, _ in self.fields}]
            if unknown:
                raise ValidationError(path, self.signature(), value, f"no field {unknown[0]!r}")
            for n, codec in self.fields:
                if n not in value:
                    raise ValidationError(f"{path}.{n}", codec.name, None, "missing")
            return [value[n] for n, _ in self.fields]
        if not _is_sequence(value) or len(value) != len(self.fields):
            raise ValidationError(path, self.signature(), value, f"a tuple of {len(self.fields)} items")
        return list(value)


class EnumCodec(Codec):
    """A user enum: ``"Plain"``, ``{"Wrapped": 7}``, ``{"Pair": (-1, "p")}``,
    ``{"Named": {"z": "z"}}`` in Python; the variant index, then the
    fields, on the wire."""

    def __init__(self, name: str, variants: list[VariantCodec]) -> None:
        self.name = name
        self.variants = variants
        self.by_name = {v.name: v for v in variants}
        self.min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if isinstance(value, str):
            variant_name, inner = value, None
        elif isinstance(value, Mapping) and len(value) == 1:
            ((variant_name, inner),) = value.items()
        else:
            names = ", ".join(v.name for v in self.variants)
            raise self.fail(path, value, f"a variant name or a one-key dict {{name: value}}; variants: {names}")
        variant = self.by_name.get(variant_name)
        if variant is None:
            raise self.fail(path, value, f"{self.name} has no variant {variant_name!r}")
        sub = f"{path}.{variant.name}"
        variant.encode_fields(variant.unpack(inner, sub), out, sub)

    def decode(self, r: Reader) -> Any:
        index = r.varint(32)
        if index >= len(self.variants):
            raise DecodeError(f"{self.name} has no variant with index {index}")
        variant = self.variants[index]
        value = variant.value(variant.decode_fields(r))
        return variant.name if variant.shape == "unit" else {variant.name: value}


class RefCodec(Codec):
    """A reference to a named type, resolved at first use (so that a type
    may refer to itself)."""

    def __init__(self, name: str, table: TypeTable) -> None:
        self.name = name
        self.table = table
        self.min_size = 0

    @property
    def target(self) -> Codec:
        return self.table.named(self.name)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        self.target.encode(value, out, path)

    def decode(self, r: Reader) -> Any:
        return self.target.decode(r)


_PRIMITIVES: dict[str, Callable[[], Codec]] = {
    "unit": UnitCodec,
    "bool": BoolCodec,
    "f32": lambda: FloatCodec(32),
    "f64": lambda: FloatCodec(64),
    "char": CharCodec,
    "string": StrCodec,
    "bytes": BytesCodec,
    **{f"{s}{b}": partial(IntCodec, b, s == "i") for s in "ui" for b in (8, 16, 32, 64, 128)},
}


class TypeTable:
    """Builds codecs from the schema's type objects and holds its named
    types (``types``)."""

    def __init__(self, types: Mapping[str, Any]) -> None:
        if not isinstance(types, Mapping):
            raise SchemaError("`types` must be an object")
        self._raw = types
        self._named: dict[str, Codec] = {}
        for name in types:
            self._named[name] = self._define(name, types[name])

    def named(self, name: str) -> Codec:
        """The codec of a type from ``types``."""
        return self._named[name]

    def raw(self, name: str) -> Mapping[str, Any]:
        """The JSON definition of a type from ``types``."""
        definition: Mapping[str, Any] = self._raw[name]
        return definition

    def codec(self, t: Any, where: str) -> Codec:
        """The codec of one type object (``{"type": "seq", "item": ...}``)."""
        if not isinstance(t, Mapping) or "type" not in t:
            raise SchemaError(f"{where}: a type must be an object with a `type` key, got {t!r}")
        kind = t["type"]
        try:
            if kind in _PRIMITIVES:
                return _PRIMITIVES[kind]()
            if kind == "option":
                return OptionCodec(self.codec(t["some"], f"{where}.some"))
            if kind == "seq":
                return SeqCodec(self.codec(t["item"], f"{where}.item"))
            if kind == "array":
                length = t["len"]
                if not isinstance(length, int) or length < 0:
                    raise SchemaError(f"{where}: `len` must be a count")
                return ArrayCodec(self.codec(t["item"], f"{where}.item"), length)
            if kind == "tuple":
                return TupleCodec([self.codec(x, f"{where}.{i}") for i, x in enumerate(t["items"])])
            if kind == "map":
                return MapCodec(self.codec(t["key"], f"{where}.key"), self.codec(t["value"], f"{where}.value"))
            if kind == "ref":
                name = t["name"]
                if name not in self._raw:
                    raise SchemaError(f"{where}: a reference to {name!r}, which `types` does not define")
                return RefCodec(name, self)
        except KeyError as e:
            raise SchemaError(f"{where}: a `{kind}` type needs the key {e}") from None
        raise SchemaError(f"{where}: unknown type {kind!r}")

    def variants(self, raw: Any, where: str) -> list[VariantCodec]:
        """The variants of an enum (the event enum or a user one)."""
        if not isinstance(raw, list):
            raise SchemaError(f"{where}: `variants` must be a list")
        out = []
        for i, v in enumerate(raw):
            vw = f"{where}.{v.get('name', i) if isinstance(v, Mapping) else i}"
            if not isinstance(v, Mapping):
                raise SchemaError(f"{vw}: a variant must be an object")
            try:
                index, name, shape = v["index"], v["name"], v["shape"]
            except KeyError as e:
                raise SchemaError(f"{vw}: a variant needs the key {e}") from None
            if index != i:
                raise SchemaError(f"{vw}: variants must be listed by index (expected {i}, got {index})")
            out.append(VariantCodec(index, name, shape, self._fields(v, shape, vw)))
        return out

    def _fields(self, v: Mapping[str, Any], shape: str, where: str) -> list[tuple[str | None, Codec]]:
        try:
            if shape in ("unit", "unit_struct"):
                return []
            if shape in ("newtype", "newtype_struct"):
                return [(None, self.codec(v["type"], where))]
            if shape in ("tuple", "tuple_struct"):
                return [(None, self.codec(x, f"{where}.{i}")) for i, x in enumerate(v["items"])]
            if shape == "struct":
                return [(f["name"], self.codec(f["type"], f"{where}.{f['name']}")) for f in v["fields"]]
        except (KeyError, TypeError) as e:
            raise SchemaError(f"{where}: a `{shape}` needs {e}") from None
        raise SchemaError(f"{where}: unknown shape {shape!r}")

    def _define(self, name: str, t: Any) -> Codec:
        where = f"types.{name}"
        if not isinstance(t, Mapping) or "kind" not in t:
            raise SchemaError(f"{where}: a named type must be an object with a `kind` key")
        kind = t["kind"]
        if kind == "enum":
            return EnumCodec(name, self.variants(t.get("variants"), where))
        fields = self._fields(t, kind, where)
        if kind == "struct":
            return StructCodec(name, [(n, c) for n, c in fields if n is not None])
        if kind == "unit_struct":
            return UnitCodec(name)
        if kind == "newtype_struct":
            inner = fields[0][1]
            return _Named(name, inner)
        return TupleCodec([c for _, c in fields], name)


class _Named(Codec):
    """A newtype struct: its inner value, under its own name."""

    def __init__(self, name: str, inner: Codec) -> None:
        self.name = name
        self.inner = inner
        self.min_size = inner.min_size

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        self.inner.encode(value, out, path)

    def decode(self, r: Reader) -> Any:
        return self.inner.decode(r)
