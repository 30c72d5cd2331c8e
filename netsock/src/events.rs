//! The [`Events`] trait: what netsock needs to know about a user's event enum.
//!
//! `#[derive(Events)]` implements it; this module documents the contract so that
//! hand-written impls (and other languages) can follow it.
//!
//! * An event enum's value is sent as its postcard encoding: the variant index
//!   as a varint, then the variant's fields. So [`Events::variant_index`] must
//!   return the index serde uses, which is the declaration order for a plain
//!   `#[derive(Serialize)]` enum. Attributes that change serde's enum
//!   representation (`untagged`, `tag = ..`) are not supported.
//! * [`Events::VARIANTS`] lists the variants in that order, with their names and,
//!   for request variants, the name of the response type.
//! * [`Events::SCHEMA`] is a canonical text of the enum's shape; its hash,
//!   [`SchemaId::of`], is exchanged in the handshake so that two programs built
//!   from different enums refuse to talk (unless the connection is lenient).
//!
//! ```
//! use netsock::Events;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Events, Serialize, Deserialize)]
//! enum Api {
//!     Log(String),
//!     #[request(response = i64)]
//!     Sum(Vec<i64>),
//! }
//!
//! let sum = Api::Sum(vec![5]);
//! assert_eq!((sum.variant_index(), sum.variant_name()), (1, "Sum"));
//! // On the wire: variant index 1, then the Vec (length 1, then 5 as a zigzag varint).
//! assert_eq!(postcard::to_stdvec(&sum).unwrap(), [1, 1, 10]);
//! assert_eq!(Api::VARIANTS[1].response, Some("i64"));
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::schema::{Types, VariantDef};

/// One variant of an [`Events`] enum.
///
/// ```
/// use netsock::{Events, Variant};
///
/// #[derive(Events, serde::Serialize, serde::Deserialize)]
/// enum Api {
///     Ping,
///     #[request(response = i64)]
///     Sum(Vec<i64>),
/// }
///
/// assert_eq!(Api::VARIANTS, &[Variant::event("Ping"), Variant::request("Sum", "i64")]);
/// assert!(Api::VARIANTS[1].is_request());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Variant {
    /// The variant's name as written in the enum, e.g. `"Message"`.
    pub name: &'static str,
    /// For a request variant, the response type as written, e.g. `"i64"`.
    pub response: Option<&'static str>,
    /// Whether the request answers with a stream of `response` values
    /// (declared `#[request(stream = T)]`) rather than one.
    pub stream: bool,
    /// For a request that carries a stream of items to its handler (an
    /// upload, declared `#[request(upload = U, ..)]`), their type as
    /// written.
    pub upload: Option<&'static str>,
}

impl Variant {
    /// A one-way event variant.
    ///
    /// ```
    /// const V: netsock::Variant = netsock::Variant::event("Message");
    /// assert!(V.response.is_none());
    /// ```
    pub const fn event(name: &'static str) -> Self {
        Variant {
            name,
            response: None,
            stream: false,
            upload: None,
        }
    }

    /// A request variant, answered with a value of the named response type.
    ///
    /// ```
    /// const V: netsock::Variant = netsock::Variant::request("Sum", "i64");
    /// assert_eq!(V.response, Some("i64"));
    /// ```
    pub const fn request(name: &'static str, response: &'static str) -> Self {
        Variant {
            name,
            response: Some(response),
            stream: false,
            upload: None,
        }
    }

    /// A stream request variant, answered with a stream of values of the
    /// named item type (`#[request(stream = T)]`).
    ///
    /// ```
    /// const V: netsock::Variant = netsock::Variant::stream("Watch", "f64");
    /// assert!(V.is_request() && V.stream);
    /// assert_eq!(V.response, Some("f64"));
    /// ```
    pub const fn stream(name: &'static str, item: &'static str) -> Self {
        Variant {
            name,
            response: Some(item),
            stream: true,
            upload: None,
        }
    }

    /// This request variant, carrying a stream of values of the named type
    /// from the caller to the handler (`#[request(upload = U, ..)]`).
    ///
    /// ```
    /// const V: netsock::Variant = netsock::Variant::request("Store", "u64").with_upload("Vec<u8>");
    /// assert_eq!(V.upload, Some("Vec<u8>"));
    /// ```
    pub const fn with_upload(self, item: &'static str) -> Self {
        Variant {
            upload: Some(item),
            ..self
        }
    }

    /// Whether this is a request variant.
    ///
    /// ```
    /// assert!(netsock::Variant::request("Sum", "i64").is_request());
    /// ```
    pub const fn is_request(&self) -> bool {
        self.response.is_some()
    }
}

/// A stable 64-bit identity of an event enum's shape (FNV-1a of
/// [`Events::SCHEMA`]).
///
/// ```
/// use netsock::{Events, SchemaId};
///
/// #[derive(Events, serde::Serialize, serde::Deserialize)]
/// enum Api { Ping }
///
/// assert_eq!(Api::SCHEMA_ID, SchemaId::of(Api::SCHEMA));
/// assert_eq!(SchemaId::of("").to_string(), "cbf29ce484222325"); // 16 hex digits
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SchemaId(pub u64);

impl SchemaId {
    /// Hashes a canonical schema text with 64-bit FNV-1a.
    ///
    /// ```
    /// use netsock::SchemaId;
    /// assert_eq!(SchemaId::of(""), SchemaId(0xcbf2_9ce4_8422_2325));
    /// assert_ne!(SchemaId::of("enum A{B}"), SchemaId::of("enum A{C}"));
    /// ```
    pub const fn of(schema: &str) -> SchemaId {
        let bytes = schema.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        SchemaId(hash)
    }
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaId({self})")
    }
}

/// An enum of events (and requests) that travels over a netsock connection.
///
/// Derive it with `#[derive(Events)]`. A hand-written impl looks like this:
///
/// ```
/// use netsock::schema::{Describe, Fields, Type, Types, VariantDef};
/// use netsock::{Events, SchemaId, Variant};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug)]
/// enum SumApi {
///     Sum(Vec<i64>),
///     Log { line: String },
/// }
///
/// impl Events for SumApi {
///     const VARIANTS: &'static [Variant] =
///         &[Variant::request("Sum", "i64"), Variant::event("Log")];
///     const SCHEMA: &'static str = "SumApi{Sum(Vec<i64>)->i64,Log{line:String}}";
///     fn variant_index(&self) -> u32 {
///         match self {
///             SumApi::Sum(..) => 0,
///             SumApi::Log { .. } => 1,
///         }
///     }
///     fn variant_defs(types: &mut Types) -> Vec<VariantDef> {
///         vec![
///             VariantDef::request("Sum", Fields::Newtype(<Vec<i64>>::describe(types)), Type::I64),
///             VariantDef::event("Log", Fields::Struct(vec![("line", String::describe(types))])),
///         ]
///     }
/// }
///
/// assert_eq!(SumApi::Log { line: "x".into() }.variant_index(), 1);
/// assert_eq!(SumApi::SCHEMA_ID, SchemaId::of(SumApi::SCHEMA));
/// ```
pub trait Events: Serialize + DeserializeOwned + Send + 'static {
    /// The variants, in declaration (serde) order.
    const VARIANTS: &'static [Variant];
    /// Canonical text of the enum's shape: names, field names and field type
    /// tokens, and response types.
    const SCHEMA: &'static str;
    /// The identity exchanged in the handshake.
    const SCHEMA_ID: SchemaId = SchemaId::of(Self::SCHEMA);

    /// The index of this value's variant in [`VARIANTS`](Events::VARIANTS).
    fn variant_index(&self) -> u32;

    /// Describes each variant (in [`VARIANTS`](Events::VARIANTS) order): its
    /// fields' types and its response type, adding the named types they
    /// reach to `types`. `#[derive(Events)]` writes it from the fields'
    /// [`Describe`](crate::Describe) impls; [`schema_json`](Events::schema_json) uses it.
    fn variant_defs(types: &mut Types) -> Vec<VariantDef>;

    /// The enum's [schema JSON](crate::schema): its variants and every type
    /// they reach, for programs in other languages (the book's "Schema
    /// JSON" chapter specifies it).
    ///
    /// ```
    /// use netsock::Events;
    ///
    /// #[derive(Events, serde::Serialize, serde::Deserialize)]
    /// enum Api {
    ///     Ping,
    /// }
    ///
    /// assert_eq!(
    ///     Api::schema_json(),
    ///     r#"{
    ///   "format": 1,
    ///   "name": "Api",
    ///   "schema_text": "Api{Ping}",
    ///   "schema_id": "9419ba1d30f182e3",
    ///   "variants": [
    ///     {"index": 0, "name": "Ping", "shape": "unit", "request": false, "response": null, "stream": null}
    ///   ],
    ///   "types": {}
    /// }
    /// "#
    /// );
    /// ```
    fn schema_json() -> String {
        let mut types = Types::default();
        let variants = Self::variant_defs(&mut types);
        let id = Self::SCHEMA_ID.to_string();
        crate::schema::document(Self::SCHEMA, &id, &variants, &types)
    }

    /// Writes the enum's [schema JSON](Events::schema_json) to the file at
    /// `path`: how a program hands its schema to a Python or TypeScript peer.
    ///
    /// ```
    /// use netsock::Events;
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// let path = std::env::temp_dir().join(format!("api-{}.json", std::process::id()));
    /// Api::write_schema_json(&path)?;
    /// assert_eq!(std::fs::read_to_string(&path)?, Api::schema_json());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn write_schema_json(path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, Self::schema_json())
    }

    /// The name of this value's variant.
    ///
    /// ```
    /// # use netsock::{Events, Variant};
    /// # #[derive(serde::Serialize, serde::Deserialize)] enum E { A }
    /// # impl Events for E { const VARIANTS: &'static [Variant] = &[Variant::event("A")];
    /// #   const SCHEMA: &'static str = "E{A}"; fn variant_index(&self) -> u32 { 0 }
    /// #   fn variant_defs(_: &mut netsock::schema::Types) -> Vec<netsock::schema::VariantDef> {
    /// #       vec![netsock::schema::VariantDef::event("A", netsock::schema::Fields::Unit)] } }
    /// assert_eq!(E::A.variant_name(), "A");
    /// ```
    fn variant_name(&self) -> &'static str {
        variant_name::<Self>(self.variant_index())
    }
}

/// The name of variant `index` of `E`, or `"<unknown>"`.
pub(crate) fn variant_name<E: Events>(index: u32) -> &'static str {
    E::VARIANTS
        .get(index as usize)
        .map_or("<unknown>", |v| v.name)
}
