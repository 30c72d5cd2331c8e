//! Parsing `#[derive(Events)]`: the enum, its variants and their
//! `#[request]` attributes, and the names their methods will take.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident};

use super::attrs;
use crate::error::Errors;
use crate::model::{EventVariant, EventsModel, Field, Shape};
use crate::names;

/// Parses and checks the input of `#[derive(Events)]`.
pub(crate) fn events(input: TokenStream) -> syn::Result<EventsModel> {
    let input: DeriveInput = syn::parse2(input)?;
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
        let request = attrs::request(&v.attrs, &mut errors);
        let stream = request.as_ref().is_some_and(|r| r.stream);
        let upload = request.as_ref().and_then(|r| r.upload.clone());
        let response = request.map(|r| r.ty);
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
        let most = if upload.is_some() { 11 } else { 12 };
        if fields.len() > most {
            errors.push(syn::Error::new_spanned(
                &v.fields,
                "a netsock event has at most 12 fields, 11 with an upload (its handler \
                 takes one argument per field, then the upload); group them into a struct",
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
            docs: attrs::docs(&v.attrs),
            shape,
            fields,
            response,
            stream,
            upload,
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
        let generated = v.names();
        for name in generated.all() {
            if names::is_reserved(name) || names::NOT_IDENTIFIERS.contains(&name.as_str()) {
                errors.push(syn::Error::new(
                    v.ident.span(),
                    format!(
                        "variant `{}` would generate the method `{name}`, a name netsock reserves \
                         for its own `Socket`/`Server` methods; rename the variant",
                        v.ident
                    ),
                ));
            } else if let Some(first) = seen.get(name) {
                errors.push(syn::Error::new(
                    v.ident.span(),
                    format!(
                        "variant `{}` would generate the method `{name}`, which variant `{first}` \
                         already generates; rename one of them",
                        v.ident
                    ),
                ));
            } else {
                seen.insert(name.clone(), &v.ident);
            }
        }
    }
}
