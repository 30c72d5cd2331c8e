//! Parsing `#[derive(Services)]`: an enum whose variants each carry one
//! events enum, each type once.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Fields, Ident};

use super::attrs;
use crate::error::Errors;
use crate::model::ServicesModel;
use crate::names;

/// Parses and checks the input of `#[derive(Services)]`.
pub(crate) fn services(input: TokenStream) -> syn::Result<ServicesModel> {
    let input: DeriveInput = syn::parse2(input)?;
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
        let key = names::schema_text(&ty);
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
