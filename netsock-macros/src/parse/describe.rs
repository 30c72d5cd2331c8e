//! Parsing `#[derive(Describe)]`: a struct or an enum, its fields, and the
//! serde attributes that would make its description wrong.

use proc_macro2::TokenStream;
use syn::{Attribute, Data, DeriveInput, Fields, GenericParam};

use super::attrs;
use crate::error::Errors;
use crate::model::{DescribeModel, DescribedBody, DescribedFields, Field, Shape};

/// serde attributes that change how a type is laid out on the wire, which a
/// description from the Rust definition would get wrong.
const LAYOUT_CHANGING: &[&str] = &[
    "skip",
    "skip_serializing",
    "skip_deserializing",
    "skip_serializing_if",
    "flatten",
    "tag",
    "content",
    "untagged",
    "transparent",
    "with",
    "serialize_with",
    "deserialize_with",
    "into",
    "from",
    "try_from",
    "remote",
    "other",
];

/// Parses and checks the input of `#[derive(Describe)]`.
pub(crate) fn describe(input: TokenStream) -> syn::Result<DescribeModel> {
    let input: DeriveInput = syn::parse2(input)?;
    let mut errors = Errors::default();
    let krate = attrs::container(&input.attrs, &mut errors);
    serde_attrs(&input.attrs, &mut errors);
    for param in &input.generics.params {
        if let GenericParam::Const(c) = param {
            errors.push(syn::Error::new_spanned(
                c,
                "`#[derive(Describe)]` does not support const generic parameters; \
                 implement `netsock::Describe` by hand",
            ));
        }
    }
    let body = match &input.data {
        Data::Struct(s) => DescribedBody::Struct(fields(&s.fields, &mut errors)),
        Data::Enum(e) => DescribedBody::Enum(
            e.variants
                .iter()
                .map(|v| {
                    serde_attrs(&v.attrs, &mut errors);
                    (v.ident.clone(), fields(&v.fields, &mut errors))
                })
                .collect(),
        ),
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Describe)]` works on structs and enums, not unions (serde cannot \
                 serialize them either)",
            ))
        }
    };
    errors.finish()?;
    Ok(DescribeModel {
        krate,
        ident: input.ident,
        generics: input.generics,
        body,
    })
}

fn fields(fields: &Fields, errors: &mut Errors) -> DescribedFields {
    let shape = match fields {
        Fields::Unit => Shape::Unit,
        Fields::Unnamed(_) => Shape::Tuple,
        Fields::Named(_) => Shape::Struct,
    };
    let fields = fields
        .iter()
        .enumerate()
        .map(|(k, f)| {
            serde_attrs(&f.attrs, errors);
            Field {
                name: f
                    .ident
                    .clone()
                    .unwrap_or_else(|| quote::format_ident!("arg{k}")),
                named: f.ident.is_some(),
                ty: f.ty.clone(),
            }
        })
        .collect();
    DescribedFields { shape, fields }
}

/// Refuses the `#[serde(..)]` arguments in [`LAYOUT_CHANGING`].
fn serde_attrs(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if let Some(name) = LAYOUT_CHANGING.iter().find(|n| meta.path.is_ident(n)) {
                return Err(meta.error(format!(
                    "`#[derive(Describe)]` cannot follow `#[serde({name})]`: it changes the \
                     layout on the wire, which the schema is read from the Rust definition; \
                     implement `netsock::Describe` by hand for this type"
                )));
            }
            // Skip the argument's value, whatever it is (`rename = ".."`, `bound(..)`).
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _ = meta.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        let _: syn::Expr = inner.value()?.parse()?;
                    }
                    Ok(())
                });
            }
            Ok(())
        });
        errors.push_result(parsed);
    }
}
