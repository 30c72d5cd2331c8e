//! Writing the schema JSON document: the model of `mod.rs` turned into a
//! small JSON tree, printed with two-space indents, each object or array on
//! one line when it fits.

use std::fmt::Write as _;

use super::{Def, Fields, NamedId, Type, Types, VariantDef};

/// The version of the document's format, its `"format"` key.
pub(crate) const FORMAT: u32 = 1;

/// The schema JSON document of an enum whose schema text is `schema_text`
/// (the enum's name, then its variants) and id `schema_id`, its `variants`
/// described with `types`. The book's "Schema JSON" chapter specifies it.
pub(crate) fn document(
    schema_text: &str,
    schema_id: &str,
    variants: &[VariantDef],
    types: &Types,
) -> String {
    let names = types.names();
    let variants = variants
        .iter()
        .enumerate()
        .map(|(i, v)| variant(i, v, true, &names))
        .collect();
    let defs = types
        .named
        .iter()
        .zip(&names)
        .map(|(n, name)| {
            let def = match &n.def {
                Some(Def::Struct(fields)) => struct_def(fields, &names),
                Some(Def::Enum(vs)) => Json::Obj(vec![
                    ("kind", Json::str("enum")),
                    (
                        "variants",
                        Json::Arr(
                            vs.iter()
                                .enumerate()
                                .map(|(i, v)| variant(i, v, false, &names))
                                .collect(),
                        ),
                    ),
                ]),
                None => Json::Null, // unreachable: `named` fills every def before returning
            };
            (name.clone(), def)
        })
        .collect();
    let name = schema_text.split('{').next().unwrap_or(schema_text);
    let doc = Json::Obj(vec![
        ("format", Json::Num(FORMAT.to_string())),
        ("name", Json::str(name)),
        ("schema_text", Json::str(schema_text)),
        ("schema_id", Json::str(schema_id)),
        ("variants", Json::Arr(variants)),
        ("types", Json::Map(defs)),
    ]);
    let mut out = String::new();
    doc.write(&mut out, 0);
    out.push('\n');
    out
}

/// The Rust-like spelling of `ty`, with `names` for the named types.
pub(super) fn type_name(ty: &Type, names: &[String]) -> String {
    let list = |items: &[Type]| {
        items
            .iter()
            .map(|t| type_name(t, names))
            .collect::<Vec<_>>()
            .join(",")
    };
    match ty {
        Type::Optional(t) => format!("Option<{}>", type_name(t, names)),
        Type::Seq(t) => format!("Vec<{}>", type_name(t, names)),
        Type::Array(t, n) => format!("[{};{n}]", type_name(t, names)),
        Type::Tuple(items) => format!("({})", list(items)),
        Type::Map(k, v) => format!("Map<{},{}>", type_name(k, names), type_name(v, names)),
        Type::Named(NamedId(i)) => names.get(*i).cloned().unwrap_or_default(),
        Type::Str => "String".to_owned(),
        Type::Bytes => "Bytes".to_owned(),
        Type::Unit => "()".to_owned(),
        primitive => primitive_name(primitive).to_owned(),
    }
}

fn primitive_name(ty: &Type) -> &'static str {
    match ty {
        Type::Unit => "unit",
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::U128 => "u128",
        Type::I8 => "i8",
        Type::I16 => "i16",
        Type::I32 => "i32",
        Type::I64 => "i64",
        Type::I128 => "i128",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::Str => "string",
        Type::Bytes => "bytes",
        Type::Optional(_) => "option",
        Type::Seq(_) => "seq",
        Type::Array(..) => "array",
        Type::Tuple(_) => "tuple",
        Type::Map(..) => "map",
        Type::Named(_) => "ref",
    }
}

fn ty(t: &Type, names: &[String]) -> Json {
    let mut obj = vec![("type", Json::str(primitive_name(t)))];
    match t {
        Type::Optional(some) => obj.push(("some", ty(some, names))),
        Type::Seq(item) => obj.push(("item", ty(item, names))),
        Type::Array(item, len) => {
            obj.push(("item", ty(item, names)));
            obj.push(("len", Json::Num(len.to_string())));
        }
        Type::Tuple(items) => obj.push(("items", tys(items, names))),
        Type::Map(k, v) => {
            obj.push(("key", ty(k, names)));
            obj.push(("value", ty(v, names)));
        }
        Type::Named(NamedId(i)) => {
            obj.push(("name", Json::str(names.get(*i).map_or("", String::as_str))))
        }
        _ => {}
    }
    Json::Obj(obj)
}

fn tys(items: &[Type], names: &[String]) -> Json {
    Json::Arr(items.iter().map(|t| ty(t, names)).collect())
}

/// `shape` and the keys that go with it.
fn fields(f: &Fields, names: &[String], obj: &mut Vec<(&'static str, Json)>, kind: bool) {
    let (key, shape) = match f {
        Fields::Unit => ("shape", "unit"),
        Fields::Newtype(_) => ("shape", "newtype"),
        Fields::Tuple(_) => ("shape", "tuple"),
        Fields::Struct(_) => ("shape", "struct"),
    };
    let shape = match (kind, shape) {
        (false, s) => s,
        (true, "unit") => "unit_struct",
        (true, "newtype") => "newtype_struct",
        (true, "tuple") => "tuple_struct",
        (true, s) => s,
    };
    obj.push((if kind { "kind" } else { key }, Json::str(shape)));
    match f {
        Fields::Unit => {}
        Fields::Newtype(t) => obj.push(("type", ty(t, names))),
        Fields::Tuple(items) => obj.push(("items", tys(items, names))),
        Fields::Struct(named) => obj.push((
            "fields",
            Json::Arr(
                named
                    .iter()
                    .map(|(n, t)| Json::Obj(vec![("name", Json::str(n)), ("type", ty(t, names))]))
                    .collect(),
            ),
        )),
    }
}

fn struct_def(f: &Fields, names: &[String]) -> Json {
    let mut obj = Vec::new();
    fields(f, names, &mut obj, true);
    Json::Obj(obj)
}

/// A variant: of the event enum (`request` and `response` keys) or of a
/// user's enum.
fn variant(index: usize, v: &VariantDef, event: bool, names: &[String]) -> Json {
    let mut obj = vec![
        ("index", Json::Num(index.to_string())),
        ("name", Json::str(v.name)),
    ];
    fields(&v.fields, names, &mut obj, false);
    if event {
        // A stream request answers with a stream of its `stream` type, not
        // one `response`.
        let answer = v.response.as_ref().map_or(Json::Null, |r| ty(r, names));
        let (response, stream) = match v.stream {
            true => (Json::Null, answer),
            false => (answer, Json::Null),
        };
        obj.push(("request", Json::Bool(v.response.is_some())));
        obj.push(("response", response));
        obj.push(("stream", stream));
        // Only on the variants that carry one, so that documents without
        // uploads read as before.
        if let Some(upload) = &v.upload {
            obj.push(("upload", ty(upload, names)));
        }
    }
    Json::Obj(obj)
}

/// Just enough JSON: keys keep their order.
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
    /// An object whose keys are not known in advance (`types`).
    Map(Vec<(String, Json)>),
}

/// How wide a line may grow before an object or array is split over lines.
const WIDTH: usize = 120;

impl Json {
    fn str(s: &str) -> Json {
        Json::Str(s.to_owned())
    }

    /// Writes the value on one line.
    fn compact(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => quote(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.compact(out);
                }
                out.push(']');
            }
            Json::Obj(_) | Json::Map(_) => {
                out.push('{');
                for (i, (k, v)) in self.entries().into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(k, out);
                    out.push_str(": ");
                    v.compact(out);
                }
                out.push('}');
            }
        }
    }

    fn entries(&self) -> Vec<(&str, &Json)> {
        match self {
            Json::Obj(e) => e.iter().map(|(k, v)| (*k, v)).collect(),
            Json::Map(e) => e.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            _ => Vec::new(),
        }
    }

    /// Writes the value at `indent`: the document and its top-level values
    /// over several lines, anything deeper on one line if it fits.
    fn write(&self, out: &mut String, indent: usize) {
        let mut one_line = String::new();
        self.compact(&mut one_line);
        let start = out.rfind('\n').map_or(0, |i| i + 1);
        let fits = out.len() - start + one_line.len() <= WIDTH;
        if !self.splits() || (fits && indent >= 2) {
            out.push_str(&one_line);
            return;
        }
        let pad = "  ".repeat(indent + 1);
        match self {
            Json::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad);
                    item.write(out, indent + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
            }
            _ => {
                out.push_str("{\n");
                let entries = self.entries();
                for (i, (k, v)) in entries.iter().enumerate() {
                    out.push_str(&pad);
                    quote(k, out);
                    out.push_str(": ");
                    v.write(out, indent + 1);
                    out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
                }
            }
        }
        out.push_str(&"  ".repeat(indent));
        out.push(if matches!(self, Json::Arr(_)) {
            ']'
        } else {
            '}'
        });
    }

    fn splits(&self) -> bool {
        match self {
            Json::Arr(items) => !items.is_empty(),
            Json::Obj(e) => !e.is_empty(),
            Json::Map(e) => !e.is_empty(),
            _ => false,
        }
    }
}

/// `s` as a JSON string.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
