//! Rendering `#[derive(Describe)]`: the `Describe` impl; and the
//! description of a list of fields, which `#[derive(Events)]` shares.

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, Type};

use crate::model::{CratePath, DescribeModel, DescribedBody, Field, Shape};
use crate::names;

/// `#[derive(Describe)]`: the one impl.
pub(crate) fn describe(model: DescribeModel) -> TokenStream {
    impl_describe(&model)
}

/// The local the generated code passes the `Types` registry by.
pub(super) fn types_local() -> Ident {
    names::hidden("__netsock_types")
}

/// `<T as Describe>::describe(types)`, spanned on `ty` so that a type
/// without `Describe` is reported at the field.
pub(super) fn describe_type(krate: &CratePath, ty: &Type) -> TokenStream {
    let types = types_local();
    quote_spanned! {ty.span()=>
        <#ty as #krate::schema::Describe>::describe(#types)
    }
}

/// The `netsock::schema::Fields` of a variant or struct.
pub(super) fn fields(krate: &CratePath, shape: Shape, fields: &[Field]) -> TokenStream {
    let schema = quote!(#krate::schema);
    let types = fields.iter().map(|f| describe_type(krate, &f.ty));
    match shape {
        Shape::Unit => quote!(#schema::Fields::Unit),
        Shape::Tuple => quote!(#schema::Fields::unnamed(::std::vec![#(#types),*])),
        Shape::Struct => {
            let names = fields.iter().map(|f| {
                let name = f.name.to_string();
                let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
                quote!(#name)
            });
            quote!(#schema::Fields::Struct(::std::vec![#((#names, #types)),*]))
        }
    }
}

/// `impl<T: Describe> ::netsock::schema::Describe for Name<T>`.
fn impl_describe(model: &DescribeModel) -> TokenStream {
    let krate = &model.krate;
    let schema = quote!(#krate::schema);
    let name = &model.ident;
    let mut generics = model.generics.clone();
    let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    for param in &mut generics.params {
        if let GenericParam::Type(p) = param {
            p.bounds.push(syn::parse_quote!(#schema::Describe));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let types = types_local();
    let base = name.to_string();
    let args = params
        .iter()
        .map(|p| quote!(<#p as #schema::Describe>::describe(#types)));
    let def = match &model.body {
        DescribedBody::Struct(f) => {
            let fields = fields(krate, f.shape, &f.fields);
            quote!(#schema::Def::Struct(#fields))
        }
        DescribedBody::Enum(variants) => {
            let variants = variants.iter().map(|(ident, f)| {
                let vname = ident.to_string();
                let fields = fields(krate, f.shape, &f.fields);
                quote!(#schema::VariantDef::event(#vname, #fields))
            });
            quote!(#schema::Def::Enum(::std::vec![#(#variants),*]))
        }
    };
    quote! {
        impl #impl_generics #schema::Describe for #name #ty_generics #where_clause {
            fn describe(#types: &mut #schema::Types) -> #schema::Type {
                #types.named::<Self>(
                    #base,
                    ::core::module_path!(),
                    |#types: &mut #schema::Types| ::std::vec![#(#args),*],
                    |#types: &mut #schema::Types| #def,
                )
            }
        }
    }
}
