//! Parsing `#[netsock::service]`: its arguments and the trait, each method
//! checked and turned into a request variant.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, Type};

use super::attrs;
use crate::error::Errors;
use crate::model::{CratePath, ServiceMethod, ServiceModel};
use crate::names;

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

/// Parses and checks the arguments and the item of `#[netsock::service]`.
pub(crate) fn service(args: TokenStream, input: TokenStream) -> syn::Result<ServiceModel> {
    let krate = attrs::service_args(args)?;
    match syn::parse2::<syn::Item>(input)? {
        syn::Item::Trait(item) => service_trait(krate, item),
        other => Err(syn::Error::new_spanned(
            item_head(&other),
            "`#[netsock::service]` goes on a trait, like `#[netsock::service] trait \
             MyService { async fn call(&self, ..) -> T; }`",
        )),
    }
}

/// Parses and checks a service trait.
fn service_trait(krate: CratePath, item: ItemTrait) -> syn::Result<ServiceModel> {
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
        if names::CLIENT_RESERVED.contains(&name.as_str()) {
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
        let mut upload: Option<(Ident, Type)> = None;
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
            if let Some((first, _)) = &upload {
                errors.push(syn::Error::new_spanned(
                    &pt.pat,
                    format!(
                        "the upload parameter `{first}: ItemStream<..>` comes last: the \
                         request's other parameters travel with it, its items after it"
                    ),
                ));
                continue;
            }
            if let Some(item) = generic_item(&pt.ty, "ItemStream") {
                upload = Some((pi.ident.clone(), item));
                continue;
            }
            args.push((pi.ident.clone(), (*pt.ty).clone()));
        }
        let output = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let stream = generic_item(&output, "Streaming");
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
            docs: attrs::docs(&f.attrs),
            args,
            context,
            output,
            stream,
            upload,
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

/// What to point at when an item is not a trait: its keyword and name.
fn item_head(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Struct(i) => {
            let (k, n) = (&i.struct_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Enum(i) => {
            let (k, n) = (&i.enum_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Fn(i) => {
            let (k, n) = (&i.sig.fn_token, &i.sig.ident);
            quote!(#k #n)
        }
        syn::Item::Impl(i) => i.impl_token.to_token_stream(),
        syn::Item::Mod(i) => {
            let (k, n) = (&i.mod_token, &i.ident);
            quote!(#k #n)
        }
        other => other.to_token_stream(),
    }
}

/// The item type `T` of `Streaming<T>` or `ItemStream<T>` (as
/// `netsock::Streaming<T>`, or by any path ending so): a method returning
/// a `Streaming` answers with a stream; one taking an `ItemStream` last
/// carries an upload.
fn generic_item(ty: &syn::Type, name: &str) -> Option<syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>()[..] {
        [syn::GenericArgument::Type(item)] => Some(item.clone()),
        _ => None,
    }
}
