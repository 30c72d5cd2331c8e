"""The schema JSON document: an event enum's variants and types, as Rust's
``#[derive(Events)]`` describes them (``clients/SCHEMA-JSON.md``, format 1).

>>> schema = Schema.from_json({
...     "format": 1, "name": "SumApi", "schema_text": "SumApi{Sum(Vec<i64>)->i64}",
...     "schema_id": "76548073a8190951",
...     "variants": [{"index": 0, "name": "Sum", "shape": "newtype",
...                   "type": {"type": "seq", "item": {"type": "i64"}},
...                   "request": True, "response": {"type": "i64"}}],
...     "types": {}})
>>> schema.encode("Sum", [1, 2, 3])[1].hex()
'0003020406'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .codec import Codec, TypeTable, VariantCodec
from .errors import DecodeError, SchemaError, ValidationError
from .frames import schema_id as hash_schema_text
from .postcard import Reader

__all__ = ["Schema", "Variant", "load_schema"]

FORMAT = 1
"""The schema JSON format this package reads."""


class Variant:
    """One variant of the event enum: an event, or a request with a
    ``response`` type."""

    def __init__(
        self,
        codec: VariantCodec,
        request: bool,
        response: Codec | None,
        raw: Mapping[str, Any],
        stream: Codec | None = None,
        upload: Codec | None = None,
    ) -> None:
        self.codec = codec
        self.request = request
        self.response = response
        self.stream = stream
        """A stream request's item type (its ``stream`` key), else ``None``."""
        self.upload = upload
        """The item type of the upload stream the request carries from its
        caller (its ``upload`` key, absent in older documents), else
        ``None``. This package sends no uploads and serves none."""
        self.raw = raw
        """The variant's JSON object, keys this package does not read included."""

    @property
    def index(self) -> int:
        """The variant index, on the wire."""
        return self.codec.index

    @property
    def name(self) -> str:
        """The variant's name, as in Rust."""
        return self.codec.name

    @property
    def shape(self) -> str:
        """``unit``, ``newtype``, ``tuple`` or ``struct``."""
        return self.codec.shape

    @property
    def field_names(self) -> list[str | None]:
        """The fields' names (``None`` for unnamed ones), in order."""
        return [n for n, _ in self.codec.fields]

    def __repr__(self) -> str:
        arrow = f" -> {self.response.name}" if self.response is not None else ""
        if self.stream is not None:
            arrow = f" => {self.stream.name}"
        return f"<Variant {self.codec.signature()}{arrow}>"

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
        """The values of the fields from a call's arguments: positional
        ones in order, then (for a struct variant) named ones."""
        fields = self.codec.fields
        sig = self.codec.signature()
        if len(args) > len(fields):
            raise ValidationError(self.name, sig, tuple(args), f"{self.name} takes {len(fields)} values, got {len(args)}")
        values = list(args)
        rest = dict(kwargs)
        if rest and self.shape != "struct":
            raise ValidationError(self.name, sig, rest, f"{self.name} has no named fields; pass the values in order")
        for name, codec in fields[len(args) :]:
            if name is not None and name in rest:
                values.append(rest.pop(name))
            else:
                where = f"{self.name}.{name if name is not None else len(values)}"
                raise ValidationError(where, codec.name, None, "missing")
        if rest:
            key = next(iter(rest))
            why = "given twice" if key in self.field_names else f"{self.name} has no field {key!r}"
            raise ValidationError(f"{self.name}.{key}", sig, rest[key], why)
        return values

    def encode(self, values: Sequence[Any]) -> bytes:
        """The payload: the variant index, then each field's encoding."""
        out = bytearray()
        self.codec.encode_fields(values, out, self.name)
        return bytes(out)

    def encode_response(self, value: Any) -> bytes:
        """The reply's payload."""
        if self.response is None:
            raise ValidationError(self.name, "a request variant", value, "an event has no reply")
        out = bytearray()
        self.response.encode(value, out, f"{self.name} reply")
        return bytes(out)

    def decode_response(self, payload: bytes) -> Any:
        """The reply, decoded. Raises :class:`~netsock.DecodeError`."""
        response = self.response
        assert response is not None
        return _decode(response.decode, payload, f"the reply to {self.name}")

    def decode_item(self, payload: bytes) -> Any:
        """A stream item, decoded. Raises :class:`~netsock.DecodeError`."""
        stream = self.stream
        assert stream is not None
        return _decode(stream.decode, payload, f"an item of the {self.name} stream")

    def value(self, fields: list[Any]) -> Any:
        """The fields as one value (``None``, the newtype's value, a tuple,
        a dict)."""
        return self.codec.value(fields)


def _decode(read: Any, payload: bytes, what: str) -> Any:
    try:
        return read(Reader(payload))
    except DecodeError as e:
        raise DecodeError(f"cannot decode {what}: {e}") from None
    except RecursionError:
        raise DecodeError(f"cannot decode {what}: nested too deeply") from None


class Schema:
    """An event enum, loaded from its schema JSON document.

    ``name`` is the enum's name, ``text`` its schema text, ``id`` the
    ``SchemaId`` sent in the handshake (checked to be the hash of ``text``),
    ``variants`` in declaration order.
    """

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if not isinstance(doc, Mapping):
            raise SchemaError("a schema document is a JSON object")
        if doc.get("format") != FORMAT:
            raise SchemaError(f"schema format {doc.get('format')!r}: this package reads format {FORMAT}")
        try:
            self.name: str = doc["name"]
            self.text: str = doc["schema_text"]
            declared = doc["schema_id"]
            raw_variants = doc["variants"]
        except KeyError as e:
            raise SchemaError(f"the schema document has no {e}") from None
        self.id = hash_schema_text(self.text)
        if not isinstance(declared, str) or declared.lower() != f"{self.id:016x}":
            raise SchemaError(
                f"schema_id {declared!r} is not the hash of schema_text ({self.id:016x}); the document is corrupt"
            )
        self.doc = doc
        self.types = TypeTable(doc.get("types", {}))
        codecs = self.types.variants(raw_variants, self.name)
        self.variants: list[Variant] = []
        for codec, raw in zip(codecs, raw_variants):
            request = bool(raw.get("request", False))
            response = raw.get("response")
            item = raw.get("stream")
            upload = raw.get("upload")
            where = f"{self.name}.{codec.name}"
            if item is not None and not request:
                raise SchemaError(f"{where}: a `stream` type on a variant that is not a request")
            if upload is not None and not request:
                raise SchemaError(f"{where}: an `upload` type on a variant that is not a request")
            if item is not None and response is not None:
                raise SchemaError(f"{where}: a request has a `response` or a `stream` type, not both")
            if request and response is None and item is None:
                raise SchemaError(f"{where}: a request needs a `response` (or a `stream`) type")
            reply = self.types.codec(response, f"{where}.response") if request and item is None else None
            items = self.types.codec(item, f"{where}.stream") if item is not None else None
            uploads = self.types.codec(upload, f"{where}.upload") if upload is not None else None
            self.variants.append(Variant(codec, request, reply, raw, items, uploads))
        self._by_name = {v.name: v for v in self.variants}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Reads a schema JSON file (as ``cargo run --example X -- schema``
        or the enum's ``schema_json()`` writes it)."""
        with open(path, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as e:
                raise SchemaError(f"{os.fspath(path)} is not JSON: {e}") from None
        return cls(doc)

    @classmethod
    def from_json(cls, doc: str | bytes | Mapping[str, Any]) -> Schema:
        """A schema from a JSON text or an already parsed document."""
        if isinstance(doc, (str, bytes)):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError as e:
                raise SchemaError(f"not JSON: {e}") from None
        return cls(doc)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Schema {self.name} {self.id:016x}>"

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; a :class:`~netsock.ValidationError`
        listing the variants if there is none."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            names = ", ".join(v.name for v in self.variants)
            raise ValidationError(self.name, f"a variant of {self.name} ({names})", name) from None

    def encode(self, name: str, /, *args: Any, **fields: Any) -> tuple[Variant, bytes]:
        """The payload for variant ``name`` with these field values
        (positional in order, or by name for a struct variant)."""
        variant = self.variant(name)
        return variant, variant.encode(variant.bind(args, fields))

    def decode(self, payload: bytes) -> tuple[Variant, list[Any]]:
        """A payload as its variant and the fields' values. Raises
        :class:`~netsock.DecodeError`."""

        def read(r: Reader) -> tuple[Variant, list[Any]]:
            index = r.varint(32)
            if index >= len(self.variants):
                raise DecodeError(f"{self.name} has no variant with index {index}")
            variant = self.variants[index]
            return variant, variant.codec.decode_fields(r)

        return _decode(read, payload, f"a value of {self.name}")  # type: ignore[no-any-return]


def load_schema(path: str | os.PathLike[str]) -> Schema:
    """Same as :meth:`Schema.load`."""
    return Schema.load(path)
