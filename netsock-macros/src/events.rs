//! `#[derive(Events)]` (first cut; the helper restructures it).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::{Data, DeriveInput, Fields, Ident, Type};

struct VariantInfo {
    ident: Ident,
    fields: Fields,
    response: Option<Type>,
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn tokens(t: &impl ToTokens) -> String {
    t.to_token_stream().to_string().replace(' ', "")
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            Span::call_site(),
            "Events can only be derived for enums",
        ));
    };
    let name = &input.ident;
    let vis = &input.vis;
    let mut variants = Vec::new();
    for v in &data.variants {
        let mut response = None;
        for attr in &v.attrs {
            if attr.path().is_ident("request") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("response") {
                        response = Some(meta.value()?.parse::<Type>()?);
                        Ok(())
                    } else {
                        Err(meta.error("expected `response = Type`"))
                    }
                })?;
            }
        }
        variants.push(VariantInfo {
            ident: v.ident.clone(),
            fields: v.fields.clone(),
            response,
        });
    }
    let mut schema = format!("{name}{{");
    let mut infos = Vec::new();
    let mut arms = Vec::new();
    let mut emit_methods = Vec::new();
    let mut on_methods = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let i = i as u32;
        let vname = v.ident.to_string();
        let ident = &v.ident;
        if i > 0 {
            schema.push(',');
        }
        schema.push_str(&vname);
        let (pattern, args, params): (TokenStream, Vec<Ident>, Vec<Type>) = match &v.fields {
            Fields::Unit => (quote!(#name::#ident), vec![], vec![]),
            Fields::Named(f) => {
                schema.push('{');
                let names: Vec<Ident> = f.named.iter().filter_map(|f| f.ident.clone()).collect();
                for (k, f) in f.named.iter().enumerate() {
                    if k > 0 {
                        schema.push(',');
                    }
                    schema.push_str(&format!("{}:{}", tokens(&f.ident), tokens(&f.ty)));
                }
                schema.push('}');
                (
                    quote!(#name::#ident { #(#names),* }),
                    names,
                    f.named.iter().map(|f| f.ty.clone()).collect(),
                )
            }
            Fields::Unnamed(f) => {
                schema.push('(');
                let names: Vec<Ident> = (0..f.unnamed.len())
                    .map(|k| format_ident!("arg{k}"))
                    .collect();
                for (k, f) in f.unnamed.iter().enumerate() {
                    if k > 0 {
                        schema.push(',');
                    }
                    schema.push_str(&tokens(&f.ty));
                }
                schema.push(')');
                (
                    quote!(#name::#ident ( #(#names),* )),
                    names,
                    f.unnamed.iter().map(|f| f.ty.clone()).collect(),
                )
            }
        };
        let wild = match &v.fields {
            Fields::Unit => quote!(#name::#ident),
            Fields::Named(_) => quote!(#name::#ident { .. }),
            Fields::Unnamed(_) => quote!(#name::#ident(..)),
        };
        arms.push(quote!(#wild => #i,));
        let snake_name = snake(&vname);
        let on = format_ident!("on_{}", snake_name);
        match &v.response {
            None => {
                infos.push(quote!(::netsock::Variant::event(#vname)));
                let emit = format_ident!("emit_{}", snake_name);
                emit_methods.push(quote! {
                    #[doc = concat!("Emits `", #vname, "`.")]
                    fn #emit(&self, #(#args: #params),*) -> impl ::core::future::Future<Output = ::netsock::Result<()>> + ::core::marker::Send
                    where Self: ::netsock::Emit<#name> {
                        ::netsock::Emit::<#name>::emit(self, #pattern)
                    }
                });
                on_methods.push(quote! {
                    #[doc = concat!("Handles `", #vname, "` events.")]
                    fn #on<F, Fut>(&self, handler: F)
                    where
                        Self: ::netsock::Handle<#name>,
                        F: ::core::ops::Fn(#(#params),*) -> Fut + ::core::marker::Send + ::core::marker::Sync + 'static,
                        Fut: ::core::future::Future<Output = ()> + ::core::marker::Send + 'static,
                    {
                        ::netsock::Handle::<#name>::on(self, #i, move |value: #name| match value {
                            #pattern => handler(#(#args),*),
                            #[allow(unreachable_patterns)]
                            _ => ::core::unreachable!("netsock dispatches by variant index"),
                        })
                    }
                });
            }
            Some(resp) => {
                let rname = tokens(resp);
                schema.push_str(&format!("->{rname}"));
                infos.push(quote!(::netsock::Variant::request(#vname, #rname)));
                let call = format_ident!("{}", snake_name);
                emit_methods.push(quote! {
                    #[doc = concat!("Sends the `", #vname, "` request and waits for its reply.")]
                    fn #call(&self, #(#args: #params),*) -> impl ::core::future::Future<Output = ::core::result::Result<#resp, ::netsock::CallError>> + ::core::marker::Send
                    where Self: ::netsock::Request<#name> {
                        ::netsock::Request::<#name>::request::<#resp>(self, #pattern)
                    }
                });
                on_methods.push(quote! {
                    #[doc = concat!("Answers `", #vname, "` requests with the handler's return value.")]
                    fn #on<F, Fut>(&self, handler: F)
                    where
                        Self: ::netsock::Handle<#name>,
                        F: ::core::ops::Fn(#(#params),*) -> Fut + ::core::marker::Send + ::core::marker::Sync + 'static,
                        Fut: ::core::future::Future<Output = #resp> + ::core::marker::Send + 'static,
                    {
                        ::netsock::Handle::<#name>::on_request(self, #i, move |value: #name| match value {
                            #pattern => handler(#(#args),*),
                            #[allow(unreachable_patterns)]
                            _ => ::core::unreachable!("netsock dispatches by variant index"),
                        })
                    }
                });
            }
        }
    }
    schema.push('}');
    let emit = format_ident!("{}Emit", name);
    let handle = format_ident!("{}Handle", name);
    let emit_doc = format!("Typed methods for sending [`{name}`] events and requests, generated by `#[derive(Events)]`.");
    let handle_doc = format!("Typed methods for handling incoming [`{name}`] events and requests, generated by `#[derive(Events)]`.");
    Ok(quote! {
        impl ::netsock::Events for #name {
            const VARIANTS: &'static [::netsock::Variant] = &[#(#infos),*];
            const SCHEMA: &'static str = #schema;
            fn variant_index(&self) -> u32 {
                match self { #(#arms)* }
            }
        }
        #[doc = #emit_doc]
        #vis trait #emit: ::netsock::Endpoint<Out = #name> {
            #(#emit_methods)*
        }
        impl<T: ::netsock::Endpoint<Out = #name> + ?::core::marker::Sized> #emit for T {}
        #[doc = #handle_doc]
        #vis trait #handle: ::netsock::Endpoint<In = #name> {
            #(#on_methods)*
        }
        impl<T: ::netsock::Endpoint<In = #name> + ?::core::marker::Sized> #handle for T {}
    })
}
