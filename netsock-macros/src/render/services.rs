//! Rendering `#[derive(Services)]`: the combined enum's `Events` impl and
//! one `Embeds<Part>` impl per part; one function per generated item.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::ServicesModel;
use crate::names;

/// `#[derive(Services)]`: `Events` for the combined enum, and `Embeds<Part>`
/// for each part.
pub(crate) fn services(model: ServicesModel) -> TokenStream {
    let model = &model;
    let impl_events = impl_events(model);
    let impl_embeds = model
        .parts
        .iter()
        .enumerate()
        .map(|(i, _)| impl_embeds(model, i));
    quote! {
        #impl_events
        #(#impl_embeds)*
    }
}

/// `impl Events for Combined`: the parts' variants one after another, the
/// schema built from theirs at compile time.
fn impl_events(model: &ServicesModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let types: Vec<&syn::Type> = model.parts.iter().map(|(_, t)| t).collect();
    let mut schema_parts = Vec::new();
    for (k, (ident, ty)) in model.parts.iter().enumerate() {
        let head = format!(
            "{}{ident}:",
            if k == 0 {
                format!("{name}{{")
            } else {
                ",".into()
            }
        );
        schema_parts.push(quote!(#head));
        schema_parts.push(quote!(<#ty as #krate::Events>::SCHEMA));
    }
    schema_parts.push(quote!("}"));
    let arms = model.parts.iter().map(|(ident, ty)| {
        let inner = names::hidden("__netsock_inner");
        quote! {
            #name::#ident(#inner) => {
                <#name as #krate::service::Embeds<#ty>>::OFFSET
                    + #krate::Events::variant_index(#inner)
            }
        }
    });
    let private = quote!(#krate::__private);
    let all = names::hidden("__netsock_all");
    let registry = names::hidden("__netsock_types");
    quote! {
        impl #krate::Events for #name {
            const VARIANTS: &'static [#krate::Variant] = {
                const PARTS: &[&[#krate::Variant]] = &[#(<#types as #krate::Events>::VARIANTS),*];
                const N: ::core::primitive::usize = #private::variants_len(PARTS);
                const ALL: [#krate::Variant; N] = #private::concat_variants::<N>(PARTS);
                &ALL
            };
            const SCHEMA: &'static ::core::primitive::str = {
                const PARTS: &[&::core::primitive::str] = &[#(#schema_parts),*];
                const N: ::core::primitive::usize = #private::str_len(PARTS);
                const BYTES: [::core::primitive::u8; N] = #private::concat_str::<N>(PARTS);
                #private::as_str(&BYTES)
            };
            fn variant_index(&self) -> ::core::primitive::u32 {
                match self { #(#arms)* }
            }
            fn variant_defs(
                #registry: &mut #krate::schema::Types,
            ) -> ::std::vec::Vec<#krate::schema::VariantDef> {
                let mut #all = ::std::vec::Vec::new();
                #(::std::iter::Extend::extend(
                    &mut #all,
                    <#types as #krate::Events>::variant_defs(#registry),
                );)*
                #all
            }
        }
    }
}

/// `impl Embeds<Part> for Combined` for the part at `index`: its offset is
/// the number of variants before it.
fn impl_embeds(model: &ServicesModel, index: usize) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let (ident, ty) = &model.parts[index];
    let before = model.parts[..index]
        .iter()
        .map(|(_, t)| quote!(+ <#t as #krate::Events>::VARIANTS.len() as ::core::primitive::u32));
    let inner = names::hidden("__netsock_inner");
    quote! {
        impl #krate::service::Embeds<#ty> for #name {
            const OFFSET: ::core::primitive::u32 = 0 #(#before)*;
            fn wrap(request: #ty) -> Self {
                #name::#ident(request)
            }
            fn unwrap(self) -> ::core::option::Option<#ty> {
                match self {
                    #name::#ident(#inner) => ::core::option::Option::Some(#inner),
                    #[allow(unreachable_patterns)]
                    _ => ::core::option::Option::None,
                }
            }
        }
    }
}
