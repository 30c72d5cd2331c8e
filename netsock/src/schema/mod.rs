//! The schema JSON: an event enum described for programs in other languages.
//!
//! `#[derive(Events)]` (and `#[netsock::service]`) describe each variant,
//! its fields and its response type; each user-defined type a field reaches
//! describes itself with `#[derive(netsock::Describe)]`.
//! [`Events::schema_json`](crate::Events::schema_json) writes the whole as one JSON document: the
//! variants, every named type they reach down to primitives, the schema text
//! and the [`SchemaId`](crate::SchemaId) it hashes to. The format is
//! specified in the book's "Schema JSON" chapter.
//!
//! ```
//! use netsock::{Describe, Events};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Describe, Serialize, Deserialize)]
//! struct Point {
//!     x: i32,
//!     y: i32,
//! }
//!
//! #[derive(Events, Serialize, Deserialize)]
//! enum Api {
//!     Moved(Point),
//!     #[request(response = i64)]
//!     Sum(Vec<i64>),
//! }
//!
//! let json = Api::schema_json();
//! assert!(json.contains(r#""schema_text": "Api{Moved(Point),Sum(Vec<i64>)->i64}""#));
//! assert!(json.contains(r#""Point": {"#));
//! ```
//!
//! # Why a type model of our own, not `postcard-schema`
//!
//! `postcard-schema`'s `Schema` trait describes a type as a `const` tree of
//! `&'static` parts, named by the bare type name. That leaves no room for
//! three things this document needs: telling apart two types of the same
//! name from different modules (it has no module path), naming each
//! instantiation of a generic type (`Wrapper<u8>` and `Wrapper<String>` are
//! both `Wrapper`), and a compile error in words when a field's type cannot
//! describe itself (`#[diagnostic::on_unimplemented]` can only be put on a
//! trait of our own). Its derive also names the `postcard_schema` crate, so
//! a user would depend on it or add `#[postcard(crate = ..)]` to every type.
//! [`Describe`] is built at run time instead, when the document is asked
//! for, which makes all three simple.

mod json;

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

pub(crate) use self::json::document;

/// A type that can describe itself in a [schema JSON](self).
///
/// Derive it with `#[derive(netsock::Describe)]` on every struct or enum
/// that an event's fields (or a response) contain; netsock implements it for
/// the primitives and the standard containers. The derive follows serde's
/// default representation, so it refuses serde attributes that change the
/// layout (`skip`, `flatten`, `tag`, `untagged`, `transparent`, `with`, ..).
///
/// ```
/// use netsock::schema::{Describe, Type, Types};
///
/// #[derive(netsock::Describe)]
/// struct Wrapper<T> {
///     inner: Option<T>,
/// }
///
/// let mut types = Types::default();
/// let t = <Wrapper<u8> as Describe>::describe(&mut types);
/// assert_eq!(types.name(&t), "Wrapper<u8>");
///
/// /// A type serialized by hand with `serialize_bytes` describes itself by hand.
/// struct Blob(Vec<u8>);
/// impl Describe for Blob {
///     fn describe(_: &mut Types) -> Type {
///         Type::Bytes
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot describe itself in a netsock schema",
    label = "`{Self}` does not implement `netsock::Describe`",
    note = "add `#[derive(netsock::Describe)]` next to `Serialize, Deserialize` on the definition of `{Self}` (every type an event, field or response contains needs it)",
    note = "a type from another crate can be wrapped in a type of yours that implements `Describe` by hand"
)]
pub trait Describe: 'static {
    /// Describes the type: a primitive, a composite of other types, or (for
    /// a named type) a reference to the definition it adds to `types`.
    fn describe(types: &mut Types) -> Type;
}

/// A type as the schema JSON writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Type {
    /// `()`: nothing on the wire.
    Unit,
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `u8`: one byte.
    U8,
    /// `u16`: a varint.
    U16,
    /// `u32`: a varint.
    U32,
    /// `u64` (and `usize`): a varint.
    U64,
    /// `u128`: a varint.
    U128,
    /// `i8`: one byte, two's complement.
    I8,
    /// `i16`: zigzag, then a varint.
    I16,
    /// `i32`: zigzag, then a varint.
    I32,
    /// `i64` (and `isize`): zigzag, then a varint.
    I64,
    /// `i128`: zigzag, then a varint.
    I128,
    /// `f32`: 4 bytes, little-endian.
    F32,
    /// `f64`: 8 bytes, little-endian.
    F64,
    /// `char`: as its UTF-8 string.
    Char,
    /// A string: a varint length, then UTF-8.
    Str,
    /// A byte string (`serialize_bytes`): a varint length, then the bytes.
    Bytes,
    /// `Option<T>`: a byte 0 (none) or 1 then the value.
    Optional(Box<Type>),
    /// `Vec<T>`, sets, `VecDeque`: a varint length, then the items.
    Seq(Box<Type>),
    /// `[T; N]`: N items, no length.
    Array(Box<Type>, usize),
    /// A tuple: its items, no length.
    Tuple(Vec<Type>),
    /// A map: a varint length, then key, value pairs.
    Map(Box<Type>, Box<Type>),
    /// A named type, defined in the document's `types`.
    Named(NamedId),
}

/// Which named type a [`Type::Named`] refers to, within one [`Types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedId(usize);

/// The fields of a variant or a struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fields {
    /// No fields.
    Unit,
    /// One unnamed field.
    Newtype(Type),
    /// Unnamed fields (none, or two and more).
    Tuple(Vec<Type>),
    /// Named fields, in declaration order.
    Struct(Vec<(&'static str, Type)>),
}

impl Fields {
    /// The fields of a tuple variant or tuple struct: [`Fields::Newtype`]
    /// for one, [`Fields::Tuple`] otherwise.
    ///
    /// ```
    /// use netsock::schema::{Fields, Type};
    /// assert_eq!(Fields::unnamed(vec![Type::U8]), Fields::Newtype(Type::U8));
    /// ```
    pub fn unnamed(mut types: Vec<Type>) -> Fields {
        match types.len() {
            1 => Fields::Newtype(types.remove(0)),
            _ => Fields::Tuple(types),
        }
    }
}

/// One variant of an enum (an event enum's, or a user type's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantDef {
    /// The variant's name.
    pub name: &'static str,
    /// Its fields.
    pub fields: Fields,
    /// For a request variant of an event enum, the response type (for a
    /// stream request, the type of its items).
    pub response: Option<Type>,
    /// A stream request: the peer answers with a stream of `response`
    /// values.
    pub stream: bool,
    /// For a request that carries a stream of items to its handler (an
    /// upload), their type.
    pub upload: Option<Type>,
}

impl VariantDef {
    /// An event variant, or a variant of a user's enum.
    ///
    /// ```
    /// use netsock::schema::{Fields, VariantDef};
    /// assert!(VariantDef::event("Ping", Fields::Unit).response.is_none());
    /// ```
    pub fn event(name: &'static str, fields: Fields) -> VariantDef {
        VariantDef {
            name,
            fields,
            response: None,
            stream: false,
            upload: None,
        }
    }

    /// A request variant, answered with `response`.
    ///
    /// ```
    /// use netsock::schema::{Fields, Type, VariantDef};
    /// let v = VariantDef::request("Sum", Fields::Newtype(Type::Seq(Box::new(Type::I64))), Type::I64);
    /// assert_eq!(v.response, Some(Type::I64));
    /// ```
    pub fn request(name: &'static str, fields: Fields, response: Type) -> VariantDef {
        VariantDef {
            name,
            fields,
            response: Some(response),
            stream: false,
            upload: None,
        }
    }

    /// A stream request variant, answered with a stream of `item` values.
    ///
    /// ```
    /// use netsock::schema::{Fields, Type, VariantDef};
    /// let v = VariantDef::stream("Watch", Fields::Newtype(Type::Str), Type::F64);
    /// assert!(v.stream && v.response == Some(Type::F64));
    /// ```
    pub fn stream(name: &'static str, fields: Fields, item: Type) -> VariantDef {
        VariantDef {
            name,
            fields,
            response: Some(item),
            stream: true,
            upload: None,
        }
    }

    /// This request variant, carrying an upload of `item` values.
    ///
    /// ```
    /// use netsock::schema::{Fields, Type, VariantDef};
    /// let v = VariantDef::request("Store", Fields::Unit, Type::U64).with_upload(Type::Bytes);
    /// assert_eq!(v.upload, Some(Type::Bytes));
    /// ```
    pub fn with_upload(self, item: Type) -> VariantDef {
        VariantDef {
            upload: Some(item),
            ..self
        }
    }
}

/// The definition of a named type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Def {
    /// A struct: unit, newtype, tuple or with named fields.
    Struct(Fields),
    /// An enum: its variants in declaration order (their index on the wire).
    Enum(Vec<VariantDef>),
}

/// One named type, as registered.
#[derive(Debug)]
struct Entry {
    base: &'static str,
    module: &'static str,
    args: Vec<Type>,
    /// `None` while its fields are being described (a recursive type).
    def: Option<Def>,
}

/// The named types met while describing an enum, in the order first met.
///
/// ```
/// use netsock::schema::{Describe, Types};
///
/// #[derive(netsock::Describe)]
/// struct Tree {
///     children: Vec<Tree>,
/// }
///
/// let mut types = Types::default();
/// let tree = Tree::describe(&mut types); // a recursive type ends
/// assert_eq!(types.name(&tree), "Tree");
/// ```
#[derive(Default, Debug)]
pub struct Types {
    named: Vec<Entry>,
    by_type: HashMap<TypeId, NamedId>,
}

impl Types {
    /// Registers the named type `T` (once; later calls return the same
    /// reference): `base` is its name as written, `module` where it is
    /// defined (`module_path!()`), `args` describes its generic arguments,
    /// `def` its fields or variants. What `#[derive(Describe)]` calls.
    ///
    /// ```
    /// use netsock::schema::{Def, Describe, Fields, Type, Types};
    ///
    /// struct Meters(f64);
    /// impl Describe for Meters {
    ///     fn describe(types: &mut Types) -> Type {
    ///         types.named::<Self>("Meters", module_path!(), |_| vec![], |types| {
    ///             Def::Struct(Fields::Newtype(f64::describe(types)))
    ///         })
    ///     }
    /// }
    /// let mut types = Types::default();
    /// assert!(matches!(Meters::describe(&mut types), Type::Named(_)));
    /// ```
    pub fn named<T: 'static>(
        &mut self,
        base: &'static str,
        module: &'static str,
        args: impl FnOnce(&mut Types) -> Vec<Type>,
        def: impl FnOnce(&mut Types) -> Def,
    ) -> Type {
        if let Some(&id) = self.by_type.get(&TypeId::of::<T>()) {
            return Type::Named(id);
        }
        let args = args(self);
        let id = NamedId(self.named.len());
        self.by_type.insert(TypeId::of::<T>(), id);
        self.named.push(Entry {
            base,
            module,
            args,
            def: None,
        });
        let def = def(self);
        self.named[id.0].def = Some(def);
        Type::Named(id)
    }

    /// The name `ty` takes in the document: a named type's name (see the
    /// book for how collisions are told apart), or a Rust-like spelling of a
    /// composite (`Vec<u8>`, `Option<Point>`).
    ///
    /// ```
    /// use netsock::schema::{Describe, Types};
    /// let mut types = Types::default();
    /// let t = <std::collections::BTreeMap<String, Vec<(u8, char)>>>::describe(&mut types);
    /// assert_eq!(types.name(&t), "Map<String,Vec<(u8,char)>>");
    /// ```
    pub fn name(&self, ty: &Type) -> String {
        let names = self.names();
        json::type_name(ty, &names)
    }

    /// Every named type's name in the document, by [`NamedId`]: the name as
    /// written, with its generic arguments (`Wrapper<u8>`); prefixed with its
    /// module path when another type of the same name, defined elsewhere, is
    /// in the same document (`app::a::Shape`, `app::b::Shape`); and with
    /// `#2`, `#3` .. after that when two still collide (types defined inside
    /// functions of one module).
    fn names(&self) -> Vec<String> {
        let mut modules: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for n in &self.named {
            modules.entry(n.base).or_default().insert(n.module);
        }
        let mut names: Vec<String> = Vec::with_capacity(self.named.len());
        let mut taken: HashMap<String, usize> = HashMap::new();
        for n in &self.named {
            let mut name = match modules.get(n.base).map_or(0, BTreeSet::len) {
                0 | 1 => n.base.to_owned(),
                _ => format!("{}::{}", n.module, n.base),
            };
            if !n.args.is_empty() {
                let args: Vec<String> = n.args.iter().map(|a| json::type_name(a, &names)).collect();
                name = format!("{name}<{}>", args.join(","));
            }
            let count = taken.entry(name.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                name = format!("{name}#{count}");
            }
            names.push(name);
        }
        names
    }
}

macro_rules! primitives {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl Describe for $t {
            fn describe(_: &mut Types) -> Type {
                Type::$v
            }
        })*
    };
}

primitives! {
    () => Unit, bool => Bool,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128, usize => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, i128 => I128, isize => I64,
    f32 => F32, f64 => F64, char => Char, String => Str, &'static str => Str,
}

impl<T: ?Sized + 'static> Describe for std::marker::PhantomData<T> {
    fn describe(_: &mut Types) -> Type {
        Type::Unit
    }
}

impl<T: Describe> Describe for Option<T> {
    fn describe(types: &mut Types) -> Type {
        Type::Optional(Box::new(T::describe(types)))
    }
}

impl<T: Describe, E: Describe> Describe for Result<T, E> {
    /// An enum `Result<T,E>` of two variants, `Ok(T)` then `Err(E)`, as serde
    /// writes it.
    fn describe(types: &mut Types) -> Type {
        types.named::<Self>(
            "Result",
            "core::result",
            |types| vec![T::describe(types), E::describe(types)],
            |types| {
                Def::Enum(vec![
                    VariantDef::event("Ok", Fields::Newtype(T::describe(types))),
                    VariantDef::event("Err", Fields::Newtype(E::describe(types))),
                ])
            },
        )
    }
}

macro_rules! wrappers {
    ($($t:ident)::+) => {
        impl<T: Describe + ?Sized> Describe for $($t)::+<T> {
            fn describe(types: &mut Types) -> Type {
                T::describe(types)
            }
        }
    };
}

wrappers!(Box);
wrappers!(std::sync::Arc);
wrappers!(std::rc::Rc);

macro_rules! seqs {
    ($($t:ident $(+ $bound:path)?),*) => {
        $(impl<T: Describe $(+ $bound)?> Describe for $t<T> {
            fn describe(types: &mut Types) -> Type {
                Type::Seq(Box::new(T::describe(types)))
            }
        })*
    };
}

seqs!(Vec, VecDeque, BTreeSet, HashSet);

impl<T: Describe> Describe for [T] {
    fn describe(types: &mut Types) -> Type {
        Type::Seq(Box::new(T::describe(types)))
    }
}

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn describe(types: &mut Types) -> Type {
        Type::Array(Box::new(T::describe(types)), N)
    }
}

impl<K: Describe, V: Describe> Describe for BTreeMap<K, V> {
    fn describe(types: &mut Types) -> Type {
        Type::Map(Box::new(K::describe(types)), Box::new(V::describe(types)))
    }
}

impl<K: Describe, V: Describe, S: 'static> Describe for HashMap<K, V, S> {
    fn describe(types: &mut Types) -> Type {
        Type::Map(Box::new(K::describe(types)), Box::new(V::describe(types)))
    }
}

macro_rules! tuples {
    ($(($($t:ident),+)),*) => {
        $(impl<$($t: Describe),+> Describe for ($($t,)+) {
            fn describe(types: &mut Types) -> Type {
                Type::Tuple(vec![$($t::describe(types)),+])
            }
        })*
    };
}

tuples! {
    (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F),
    (A, B, C, D, E, F, G), (A, B, C, D, E, F, G, H), (A, B, C, D, E, F, G, H, I),
    (A, B, C, D, E, F, G, H, I, J), (A, B, C, D, E, F, G, H, I, J, K),
    (A, B, C, D, E, F, G, H, I, J, K, L)
}
