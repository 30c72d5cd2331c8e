//! The attributes the macros read: `#[netsock(crate = "..")]` on a derived
//! enum, `#[request(response = T)]` on a variant, the arguments of
//! `#[netsock::service(..)]`, and doc comments to carry over.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr, Path, Type};

use crate::error::Errors;
use crate::model::CratePath;

/// Parses `crate = "path"` inside `#[netsock(..)]` or `#[netsock::service(..)]`.
fn parse_crate_path(meta: &ParseNestedMeta) -> syn::Result<CratePath> {
    let lit: LitStr = meta.value()?.parse()?;
    let path: Path = lit.parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            "expected a path to the netsock crate, like `crate = \"::my_netsock\"`",
        )
    })?;
    Ok(CratePath(path.into_token_stream()))
}

/// Parses the attribute's arguments: nothing, or `crate = "::path"`.
pub(crate) fn service_args(args: TokenStream) -> syn::Result<CratePath> {
    let mut krate = CratePath::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = parse_crate_path(&meta)?;
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

/// Reads `#[netsock(crate = "..")]` from an enum's attributes.
pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> CratePath {
    let mut krate = CratePath::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("netsock")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                krate = parse_crate_path(&meta)?;
                Ok(())
            } else {
                Err(meta
                    .error("unknown netsock attribute; expected `crate = \"::path::to::netsock\"`"))
            }
        });
        errors.push_result(parsed);
    }
    krate
}

/// Reads `#[request(response = T)]` from a variant's attributes: `Ok(None)`
/// for an event variant, `Ok(Some(T))` for a request variant.
pub(crate) fn request(attrs: &[Attribute], errors: &mut Errors) -> Option<Type> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("request")) {
        if found.is_some() {
            errors.push(syn::Error::new_spanned(
                attr,
                "duplicate `#[request]` attribute; a variant has one response type",
            ));
            continue;
        }
        let mut response = None;
        let parsed = match &attr.meta {
            syn::Meta::List(_) => attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("response") {
                    if response.is_some() {
                        return Err(meta.error("duplicate `response`"));
                    }
                    let value = meta.value()?;
                    let ty = value.parse::<Type>().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "expected the response type after `response =`, e.g. `#[request(response = i64)]`",
                        )
                    })?;
                    response = Some(ty);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown `request` argument; expected `response = Type`, e.g. `#[request(response = i64)]`",
                    ))
                }
            }),
            _ => Err(syn::Error::new_spanned(
                attr,
                "a request variant needs its response type: `#[request(response = Type)]`",
            )),
        };
        match (parsed, response) {
            (Ok(()), Some(ty)) => found = Some(ty),
            (Ok(()), None) => errors.push(syn::Error::new_spanned(
                attr,
                "a request variant needs its response type: `#[request(response = Type)]`",
            )),
            (Err(e), _) => errors.push(e),
        }
        found.get_or_insert_with(|| syn::parse_quote!(()));
    }
    found
}

/// The doc comments among `attrs`, to carry over to a generated item.
pub(crate) fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}
