//! Parsing and checking the macros' input into models the renderers read.
//!
//! Every check pushes its error (pointing at the offending token) into
//! [`Errors`](crate::error::Errors) and carries on, so one compile reports
//! every mistake.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Fields, FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, Type,
};

use crate::attrs;
use crate::error::Errors;
use crate::model::{
    CratePath, EventVariant, EventsModel, Field, ServiceMethod, ServiceModel, ServicesModel, Shape,
};
use crate::names;

/// Names of methods that `Socket`, `Server` and `Broadcast` already have,
/// which a generated method must not take: the
/// runtime's inherent method would silently win, or the call would be
/// ambiguous. Documented on the derive in lib.rs; keep the two in sync.
pub(crate) const RESERVED: &[&str] = &[
    // Socket
    "builder",
    "close",
    "closed",
    "connect",
    "emit",
    "id",
    "is_connected",
    "on",
    "on_disconnect",
    "on_reconnect",
    "on_error",
    "on_request",
    "on_any",
    "peer_addr",
    "peer_cred",
    "request",
    "start",
    "timeout",
    "data",
    "set_data",
    "dropped_events",
    "metrics",
    "try_emit",
    "volatile",
    // Server
    "bind",
    "local_addr",
    "on_connection",
    "run",
    "socket",
    "sockets",
    "middleware",
    "serve",
    "shutdown",
    "run_until",
    // Rooms and broadcast
    "broadcast",
    "except",
    "in_room",
    "join",
    "leave",
    "rooms",
    "to",
    // Std traits implemented by Socket and Server
    "clone",
    "fmt",
];

pub(crate) fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// Parses and checks the input of `#[derive(Events)]`.
pub(crate) fn events(input: &DeriveInput) -> syn::Result<EventsModel> {
    let mut errors = Errors::default();
    let krate = attrs::container(&input.attrs, &mut errors);
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(s) => {
            return Err(syn::Error::new(
                s.struct_token.span,
                "`#[derive(Events)]` works on enums only: each variant is one kind of event; \
                 wrap this struct in a variant, e.g. `enum Api { Message(MyStruct) }`",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Events)]` works on enums only, not unions",
            ))
        }
    };
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(Events)]` does not support generic enums: the schema exchanged in the \
             handshake must be fixed at compile time; use concrete types (a type alias per \
             instantiation works)",
        ));
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "an events enum needs at least one variant: with none, nothing could be sent",
        ));
    }
    let mut variants = Vec::new();
    for v in &data.variants {
        let response = attrs::request(&v.attrs, &mut errors);
        let (shape, fields) = match &v.fields {
            Fields::Unit => (Shape::Unit, Vec::new()),
            Fields::Named(f) => (
                Shape::Struct,
                f.named
                    .iter()
                    .map(|f| Field {
                        name: f.ident.clone().unwrap_or_else(|| names::hidden("field")),
                        named: true,
                        ty: f.ty.clone(),
                    })
                    .collect(),
            ),
            Fields::Unnamed(f) => (
                Shape::Tuple,
                f.unnamed
                    .iter()
                    .enumerate()
                    .map(|(k, f)| Field {
                        name: Ident::new(&format!("arg{k}"), f.ty.span()),
                        named: false,
                        ty: f.ty.clone(),
                    })
                    .collect(),
            ),
        };
        if fields.len() > 12 {
            errors.push(syn::Error::new_spanned(
                &v.fields,
                "a netsock event has at most 12 fields (its handler takes one argument per \
                 field); group them into a struct",
            ));
        }
        if let Some((_, discriminant)) = &v.discriminant {
            errors.push(syn::Error::new_spanned(
                discriminant,
                "explicit discriminants are not supported: netsock identifies variants by \
                 their declaration order",
            ));
        }
        variants.push(EventVariant {
            ident: v.ident.clone(),
            docs: docs(&v.attrs),
            shape,
            fields,
            response,
            snake: names::snake_case(&v.ident.unraw().to_string()),
        });
    }
    check_method_names(&variants, &mut errors);
    errors.finish()?;
    Ok(EventsModel {
        krate,
        vis: input.vis.clone(),
        ident: input.ident.clone(),
        variants,
    })
}

/// Rejects generated names that the runtime reserves, that are not
/// identifiers, or that two variants would both generate.
fn check_method_names(variants: &[EventVariant], errors: &mut Errors) {
    let mut seen: BTreeMap<String, &Ident> = BTreeMap::new();
    for v in variants {
        for name in v.method_names() {
            if RESERVED.contains(&name.as_str()) || names::NOT_IDENTIFIERS.contains(&name.as_str())
            {
                errors.push(syn::Error::new(
                    v.ident.span(),
                    format!(
                        "variant `{}` would generate the method `{name}`, a name netsock reserves \
                         for its own `Socket`/`Server` methods; rename the variant",
                        v.ident
                    ),
                ));
            } else if let Some(first) = seen.get(&name) {
                errors.push(syn::Error::new(
                    v.ident.span(),
                    format!(
                        "variant `{}` would generate the method `{name}`, which variant `{first}` \
                         already generates; rename one of them",
                        v.ident
                    ),
                ));
            } else {
                seen.insert(name, &v.ident);
            }
        }
    }
}

/// Methods the generated client has, which a service method must not shadow.
pub(crate) const CLIENT_RESERVED: &[&str] = &[
    "clone",
    "connect",
    "fmt",
    "into_socket",
    "new",
    "socket",
    "timeout",
];

/// Parses the attribute's arguments: nothing, or `crate = "::path"`.
pub(crate) fn service_args(args: TokenStream) -> syn::Result<CratePath> {
    let mut krate = CratePath::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = attrs::parse_crate_path(&meta)?;
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; `#[netsock::service]` takes only `crate = \"::path::to::netsock\"`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(krate)
}

/// Whether `ty` is `&Context` (any path ending in `Context`).
fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    let Type::Path(p) = &*r.elem else {
        return false;
    };
    r.mutability.is_none()
        && p.qself.is_none()
        && p.path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Context" && s.arguments.is_none())
}

/// Parses and checks a service trait.
pub(crate) fn service(krate: CratePath, item: ItemTrait) -> syn::Result<ServiceModel> {
    let mut errors = Errors::default();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a netsock service trait cannot be generic: its requests are encoded with fixed types",
        ));
    }
    if item.items.is_empty() {
        errors.push(syn::Error::new(
            item.ident.span(),
            "a netsock service needs at least one method",
        ));
    }
    let mut methods = Vec::new();
    let mut variants: BTreeMap<String, Ident> = BTreeMap::new();
    for trait_item in &item.items {
        let TraitItem::Fn(f) = trait_item else {
            errors.push(syn::Error::new_spanned(
                trait_item,
                "a netsock service trait holds only `async fn` methods",
            ));
            continue;
        };
        let sig = &f.sig;
        let name = sig.ident.unraw().to_string();
        if sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                sig.fn_token.span,
                "service methods are `async fn`: write `async fn` here",
            ));
        }
        for (present, what, span) in [
            (
                sig.constness.is_some(),
                "const",
                sig.constness.map(|t| t.span),
            ),
            (
                sig.unsafety.is_some(),
                "unsafe",
                sig.unsafety.map(|t| t.span),
            ),
            (
                sig.abi.is_some(),
                "extern",
                sig.abi.as_ref().map(|a| a.extern_token.span),
            ),
        ] {
            if present {
                errors.push(syn::Error::new(
                    span.unwrap_or_else(Span::call_site),
                    format!("service methods cannot be `{what}`"),
                ));
            }
        }
        if let Some(v) = &sig.variadic {
            errors.push(syn::Error::new_spanned(
                v,
                "service methods cannot be variadic",
            ));
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.push(syn::Error::new_spanned(
                &sig.generics,
                format!(
                    "service method `{name}` cannot be generic: its arguments and reply are \
                     encoded with fixed types; use concrete types"
                ),
            ));
        }
        if CLIENT_RESERVED.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                sig.ident.span(),
                format!(
                    "a service method cannot be named `{name}`: the generated client already \
                     has a method of that name"
                ),
            ));
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r))
                if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
            Some(FnArg::Receiver(r)) => errors.push(syn::Error::new_spanned(
                r,
                "service methods take `&self`: one value serves every connection, concurrently",
            )),
            _ => errors.push(syn::Error::new(
                sig.ident.span(),
                format!(
                    "service method `{name}` must take `&self` first: one value of the \
                     implementing type serves every connection"
                ),
            )),
        }
        let mut context = None;
        let mut args = Vec::new();
        for (k, input) in inputs.enumerate() {
            let FnArg::Typed(pt) = input else { continue };
            let Pat::Ident(pi) = &*pt.pat else {
                errors.push(syn::Error::new_spanned(
                    &pt.pat,
                    "service method parameters must be plain names, like `numbers: Vec<i64>`",
                ));
                continue;
            };
            if pi.by_ref.is_some() || pi.subpat.is_some() {
                errors.push(syn::Error::new_spanned(
                    pi,
                    "service method parameters must be plain names, like `numbers: Vec<i64>`",
                ));
                continue;
            }
            if k == 0 && is_context(&pt.ty) {
                context = Some((pi.ident.clone(), (*pt.ty).clone()));
                continue;
            }
            if matches!(&*pt.ty, Type::Reference(_)) {
                errors.push(syn::Error::new_spanned(
                    &pt.ty,
                    "service method parameters are sent over the connection, so they are owned \
                     values: take `String` rather than `&str`, `Vec<T>` rather than `&[T]`; \
                     only the first parameter may be `&Context`",
                ));
                continue;
            }
            args.push((pi.ident.clone(), (*pt.ty).clone()));
        }
        let output = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let variant = names::ident(&names::camel_case(&name), sig.ident.span());
        let variant_name = variant.to_string();
        if let Some(first) = variants.get(&variant_name) {
            errors.push(syn::Error::new(
                sig.ident.span(),
                format!(
                    "methods `{first}` and `{}` would both become the request variant \
                     `{variant_name}`; rename one of them",
                    sig.ident
                ),
            ));
        } else {
            variants.insert(variant_name, sig.ident.clone());
        }
        methods.push(ServiceMethod {
            ident: sig.ident.clone(),
            attrs: f.attrs.clone(),
            args,
            context,
            output,
            default: f.default.clone(),
            variant,
        });
    }
    errors.finish()?;
    Ok(ServiceModel {
        krate,
        item,
        methods,
    })
}

/// The canonical token text of a type or name, for the schema: tokens
/// joined without spaces, so it is the same on every machine and build.
pub(crate) fn schema_text(t: &impl ToTokens) -> String {
    t.to_token_stream().to_string().replace(' ', "")
}

/// Parses and checks the input of `#[derive(Services)]`.
pub(crate) fn services(input: &DeriveInput) -> syn::Result<ServicesModel> {
    let mut errors = Errors::default();
    let krate = attrs::container(&input.attrs, &mut errors);
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(s) => {
            return Err(syn::Error::new(
                s.struct_token.span,
                "`#[derive(Services)]` works on enums whose variants each hold one service's \
                 request enum, like `enum Backend { Sum(SumNumbersRequest) }`",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Services)]` works on enums only, not unions",
            ))
        }
    };
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(Services)]` does not support generic enums",
        ));
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "a combined services enum needs at least one variant",
        ));
    }
    let mut parts = Vec::new();
    let mut seen: BTreeMap<String, Ident> = BTreeMap::new();
    for v in &data.variants {
        let ty = match &v.fields {
            Fields::Unnamed(f) if f.unnamed.len() == 1 => f.unnamed[0].ty.clone(),
            _ => {
                errors.push(syn::Error::new(
                    v.ident.span(),
                    "each variant holds exactly one request enum: `Sum(SumNumbersRequest)`",
                ));
                continue;
            }
        };
        let key = schema_text(&ty);
        if let Some(first) = seen.get(&key) {
            errors.push(syn::Error::new_spanned(
                &ty,
                format!("`{key}` is already carried by variant `{first}`; list each once"),
            ));
        } else {
            seen.insert(key, v.ident.clone());
        }
        parts.push((v.ident.clone(), ty));
    }
    errors.finish()?;
    Ok(ServicesModel {
        krate,
        ident: input.ident.clone(),
        parts,
    })
}
