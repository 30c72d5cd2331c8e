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

/// What `#[request(..)]` declares: the reply type, whether the request
/// answers with a stream of them, and the type of the items it carries to
/// its handler, if it carries an upload.
pub(crate) struct RequestAttr {
    pub(crate) ty: Type,
    pub(crate) stream: bool,
    pub(crate) upload: Option<Type>,
}

/// Reads `#[request(response = T)]` or `#[request(stream = T)]`, either
/// with `upload = U`, from a variant's attributes: `None` for an event
/// variant.
pub(crate) fn request(attrs: &[Attribute], errors: &mut Errors) -> Option<RequestAttr> {
    const NEEDS: &str =
        "a request variant needs its response type, `#[request(response = Type)]`, \
                         or its item type, `#[request(stream = Type)]`";
    const EXPECTED: &str = "expected `response = Type` (one reply) or `stream = Type` (a stream \
                            of items), and optionally `upload = Type` (items the request carries), \
                            e.g. `#[request(response = i64)]`";
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("request")) {
        if found.is_some() {
            errors.push(syn::Error::new_spanned(
                attr,
                "duplicate `#[request]` attribute; a variant has one response type",
            ));
            continue;
        }
        let mut response: Option<(Type, bool)> = None;
        let mut upload: Option<Type> = None;
        let parsed = match &attr.meta {
            syn::Meta::List(_) => attr.parse_nested_meta(|meta| {
                let stream = meta.path.is_ident("stream");
                let is_upload = meta.path.is_ident("upload");
                if !(meta.path.is_ident("response") || stream || is_upload) {
                    return Err(meta.error(format!("unknown `request` argument; {EXPECTED}")));
                }
                if (is_upload && upload.is_some()) || (!is_upload && response.is_some()) {
                    return Err(meta.error(
                        "a request has one of `response = Type` (one reply) and \
                         `stream = Type` (a stream of items), once, and at most one \
                         `upload = Type`",
                    ));
                }
                let value = meta.value()?;
                let ty = value.parse::<Type>().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected a type after `response =`, `stream =` or `upload =`, \
                         e.g. `#[request(response = i64)]`",
                    )
                })?;
                match is_upload {
                    true => upload = Some(ty),
                    false => response = Some((ty, stream)),
                }
                Ok(())
            }),
            _ => Err(syn::Error::new_spanned(attr, NEEDS)),
        };
        match (parsed, response) {
            (Ok(()), Some((ty, stream))) => found = Some(RequestAttr { ty, stream, upload }),
            (Ok(()), None) => errors.push(syn::Error::new_spanned(attr, NEEDS)),
            (Err(e), _) => errors.push(e),
        }
        found.get_or_insert_with(|| RequestAttr {
            ty: syn::parse_quote!(()),
            stream: false,
            upload: None,
        });
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
