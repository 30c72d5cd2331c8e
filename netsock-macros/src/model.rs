//! The plain data the parsers produce and the renderers consume: one model
//! per macro, already checked, so rendering cannot fail.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Ident, ItemTrait, Type, Visibility};

use crate::names;

/// The path generated code names netsock by: `::netsock` unless the user
/// renamed the dependency and said so with `crate = "::other_name"`.
#[derive(Clone)]
pub(crate) struct CratePath(pub(crate) TokenStream);

impl Default for CratePath {
    fn default() -> Self {
        CratePath(quote!(::netsock))
    }
}

impl ToTokens for CratePath {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// The shape of a variant's fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Unit,
    Tuple,
    Struct,
}

/// One field: its name (the generated parameter's name) and type.
pub(crate) struct Field {
    /// The field's name, or `argN` for a tuple field.
    pub(crate) name: Ident,
    /// Whether the field is named (a struct variant's) or positional.
    pub(crate) named: bool,
    pub(crate) ty: Type,
}

/// One variant of an events enum.
pub(crate) struct EventVariant {
    pub(crate) ident: Ident,
    pub(crate) docs: Vec<Attribute>,
    pub(crate) shape: Shape,
    pub(crate) fields: Vec<Field>,
    /// The response type of a request variant.
    pub(crate) response: Option<Type>,
    /// Whether the request answers with a stream of `response` values.
    pub(crate) stream: bool,
    /// The type of the items the request carries to its handler, if it
    /// carries an upload.
    pub(crate) upload: Option<Type>,
    /// The variant's name in snake_case, the stem of its methods.
    pub(crate) snake: String,
}

impl EventVariant {
    /// The generated method names.
    pub(crate) fn names(&self) -> MethodNames {
        MethodNames::new(&self.snake, self.response.is_some())
    }
}

/// The names of a variant's generated methods. Each is `emit_x`,
/// `once_x`, `x` (the request stub) or `on_x`; a stub or `on_x` that would
/// be the name of one of netsock's own methods (`join`, `on_error`) takes
/// a suffix instead, `x_request` or `on_x_event`/`on_x_request`, which no
/// netsock method has. `on_x_with` is `on_x` (or its suffixed form) with
/// `_with`.
pub(crate) struct MethodNames {
    /// `emit_x` (an event) or the stub `x` (a request).
    pub(crate) send: String,
    pub(crate) on: String,
    pub(crate) on_with: String,
    /// `once_x`, for an event.
    pub(crate) once: Option<String>,
}

impl MethodNames {
    fn new(snake: &str, request: bool) -> Self {
        let kind = if request { "request" } else { "event" };
        let send = if !request {
            format!("emit_{snake}")
        } else if names::is_reserved(snake) {
            format!("{snake}_request")
        } else {
            snake.to_owned()
        };
        let mut on = format!("on_{snake}");
        if names::is_reserved(&on) {
            on = format!("on_{snake}_{kind}");
        }
        MethodNames {
            send,
            on_with: format!("{on}_with"),
            on,
            once: (!request).then(|| format!("once_{snake}")),
        }
    }

    /// Every name, for the checks.
    pub(crate) fn all(&self) -> impl Iterator<Item = &String> {
        [&self.send, &self.on, &self.on_with]
            .into_iter()
            .chain(self.once.as_ref())
    }
}

/// An enum that `#[derive(Events)]` (or the service attribute) implements
/// `Events` for.
pub(crate) struct EventsModel {
    pub(crate) krate: CratePath,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) variants: Vec<EventVariant>,
}

/// One method of a service trait.
pub(crate) struct ServiceMethod {
    pub(crate) ident: Ident,
    /// The method's attributes, doc comments included, kept on the trait.
    pub(crate) attrs: Vec<Attribute>,
    /// Its doc comments, also given to the client's method.
    pub(crate) docs: Vec<Attribute>,
    /// The declared parameters after `&self` (and after the context).
    pub(crate) args: Vec<(Ident, Type)>,
    /// The context parameter as written, if the method asks for it.
    pub(crate) context: Option<(Ident, Type)>,
    /// The declared return type (`()` when omitted).
    pub(crate) output: Type,
    /// For a method returning `Streaming<T>`: `T`, the stream's items.
    pub(crate) stream: Option<Type>,
    /// For a method taking `name: ItemStream<U>` last (an upload): its name
    /// and `U`.
    pub(crate) upload: Option<(Ident, Type)>,
    /// A default body, if the trait provides one.
    pub(crate) default: Option<syn::Block>,
    /// The request variant's name.
    pub(crate) variant: Ident,
}

/// A trait under `#[netsock::service]`.
pub(crate) struct ServiceModel {
    pub(crate) krate: CratePath,
    pub(crate) item: ItemTrait,
    pub(crate) methods: Vec<ServiceMethod>,
}

/// An enum under `#[derive(Services)]`: each variant holds one events enum.
pub(crate) struct ServicesModel {
    pub(crate) krate: CratePath,
    pub(crate) ident: Ident,
    /// Each variant's name and the events enum it holds.
    pub(crate) parts: Vec<(Ident, Type)>,
}

/// The fields of a struct or of one variant of an enum under
/// `#[derive(Describe)]`: their shape and, with it, each field.
pub(crate) struct DescribedFields {
    pub(crate) shape: Shape,
    pub(crate) fields: Vec<Field>,
}

/// What a type under `#[derive(Describe)]` is made of.
pub(crate) enum DescribedBody {
    Struct(DescribedFields),
    Enum(Vec<(Ident, DescribedFields)>),
}

/// A struct or enum under `#[derive(Describe)]`.
pub(crate) struct DescribeModel {
    pub(crate) krate: CratePath,
    pub(crate) ident: Ident,
    pub(crate) generics: syn::Generics,
    pub(crate) body: DescribedBody,
}
