//! The plain data the parsers produce and the renderers consume: one model
//! per macro, already checked, so rendering cannot fail.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Ident, ItemTrait, Type, Visibility};

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
    /// The variant's name in snake_case, the stem of its methods.
    pub(crate) snake: String,
}

impl EventVariant {
    /// The generated method names: `(emit_x or x, on_x)`.
    pub(crate) fn method_names(&self) -> [String; 2] {
        let first = match self.response {
            Some(_) => self.snake.clone(),
            None => format!("emit_{}", self.snake),
        };
        [first, format!("on_{}", self.snake)]
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
