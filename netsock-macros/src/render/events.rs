//! Rendering `#[derive(Events)]`: the `Events` impl, the `{Enum}Emit` and
//! `{Enum}Handle` traits and their blanket impls, and a check of the
//! response types; one function per generated item (and per method).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::Type;

use crate::model::{EventVariant, EventsModel, Shape};
use crate::names;

/// `#[derive(Events)]`: every item, in order.
pub(crate) fn events(model: EventsModel) -> TokenStream {
    let model = &model;
    let impl_events = impl_events(model);
    let trait_emit = trait_emit(model);
    let impl_emit = impl_emit(model);
    let trait_handle = trait_handle(model);
    let impl_handle = impl_handle(model);
    let assert_responses = assert_responses(model);
    quote! {
        #impl_events
        #trait_emit
        #impl_emit
        #trait_handle
        #impl_handle
        #assert_responses
    }
}

/// The canonical schema text: `Enum{Unit,Tuple(T),Struct{a:T},Req(T)->R,Watch(T)=>I,Put(T)<=U->R}`
/// (`=>`: a stream of `I`; `<=`: carrying a stream of `U`).
pub(super) fn schema(model: &EventsModel) -> String {
    let variants: Vec<String> = model.variants.iter().map(variant_schema).collect();
    format!("{}{{{}}}", model.ident, variants.join(","))
}

fn variant_schema(v: &EventVariant) -> String {
    let fields: Vec<String> = v
        .fields
        .iter()
        .map(|f| {
            let ty = names::schema_text(&f.ty);
            if f.named {
                format!("{}:{ty}", f.name)
            } else {
                ty
            }
        })
        .collect();
    let mut out = v.ident.to_string();
    match v.shape {
        Shape::Unit => {}
        Shape::Tuple => out.push_str(&format!("({})", fields.join(","))),
        Shape::Struct => out.push_str(&format!("{{{}}}", fields.join(","))),
    }
    if let Some(upload) = &v.upload {
        out.push_str("<=");
        out.push_str(&names::schema_text(upload));
    }
    if let Some(response) = &v.response {
        out.push_str(if v.stream { "=>" } else { "->" });
        out.push_str(&names::schema_text(response));
    }
    out
}

/// A pattern for the variant that binds each field to a hidden local
/// (`__netsock_0`, ..), so that field names never shadow generated locals.
pub(super) fn pattern(model: &EventsModel, v: &EventVariant) -> (TokenStream, Vec<TokenStream>) {
    let name = &model.ident;
    let ident = &v.ident;
    let locals: Vec<TokenStream> = (0..v.fields.len())
        .map(|k| {
            let local = names::hidden(&format!("__netsock_{k}"));
            quote!(#local)
        })
        .collect();
    let pattern = match v.shape {
        Shape::Unit => quote!(#name::#ident),
        Shape::Tuple => quote!(#name::#ident(#(#locals),*)),
        Shape::Struct => {
            let fields = v.fields.iter().map(|f| &f.name);
            quote!(#name::#ident { #(#fields: #locals),* })
        }
    };
    (pattern, locals)
}

/// The value of the variant built from its parameters (named after the fields).
pub(super) fn construct(model: &EventsModel, v: &EventVariant) -> TokenStream {
    let name = &model.ident;
    let ident = &v.ident;
    let fields = v.fields.iter().map(|f| &f.name);
    match v.shape {
        Shape::Unit => quote!(#name::#ident),
        Shape::Tuple => quote!(#name::#ident(#(#fields),*)),
        Shape::Struct => quote!(#name::#ident { #(#fields),* }),
    }
}

/// `impl ::netsock::Events for Enum`.
pub(super) fn impl_events(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let schema = schema(model);
    let infos = model.variants.iter().map(|v| {
        let vname = v.ident.to_string();
        match &v.response {
            None => quote!(#krate::Variant::event(#vname)),
            Some(r) => {
                let rname = names::schema_text(r);
                let info = match v.stream {
                    true => quote!(#krate::Variant::stream(#vname, #rname)),
                    false => quote!(#krate::Variant::request(#vname, #rname)),
                };
                match &v.upload {
                    Some(u) => {
                        let uname = names::schema_text(u);
                        quote!(#info.with_upload(#uname))
                    }
                    None => info,
                }
            }
        }
    });
    let arms = model.variants.iter().enumerate().map(|(i, v)| {
        let i = i as u32;
        let ident = &v.ident;
        match v.shape {
            Shape::Unit => quote!(#name::#ident => #i,),
            Shape::Tuple => quote!(#name::#ident(..) => #i,),
            Shape::Struct => quote!(#name::#ident { .. } => #i,),
        }
    });
    let types = super::describe::types_local();
    let defs = model.variants.iter().map(|v| {
        let vname = v.ident.to_string();
        let fields = super::describe::fields(krate, v.shape, &v.fields);
        match &v.response {
            None => quote!(#krate::schema::VariantDef::event(#vname, #fields)),
            Some(r) => {
                let response = super::describe::describe_type(krate, r);
                let def = match v.stream {
                    true => quote!(#krate::schema::VariantDef::stream(#vname, #fields, #response)),
                    false => {
                        quote!(#krate::schema::VariantDef::request(#vname, #fields, #response))
                    }
                };
                match &v.upload {
                    Some(u) => {
                        let upload = super::describe::describe_type(krate, u);
                        quote!(#def.with_upload(#upload))
                    }
                    None => def,
                }
            }
        }
    });
    quote! {
        impl #krate::Events for #name {
            const VARIANTS: &'static [#krate::Variant] = &[#(#infos),*];
            const SCHEMA: &'static ::core::primitive::str = #schema;
            fn variant_index(&self) -> ::core::primitive::u32 {
                match self { #(#arms)* }
            }
            fn variant_defs(
                #types: &mut #krate::schema::Types,
            ) -> ::std::vec::Vec<#krate::schema::VariantDef> {
                ::std::vec![#(#defs),*]
            }
        }
    }
}

/// `trait EnumEmit: ::netsock::Endpoint<Out = Enum>`: `emit_x` and request
/// stubs, for whatever sends `Enum`.
fn trait_emit(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let vis = &model.vis;
    let emit = format_ident!("{}Emit", name);
    let doc = format!(
        "Typed methods for sending [`{name}`] events and requests (on any socket or server \
         whose outgoing enum is `{name}`), generated by `#[derive(Events)]`. Bring it into \
         scope where you call them."
    );
    let methods = model
        .variants
        .iter()
        .map(|v| match (&v.response, &v.upload) {
            (None, _) => fn_emit(model, v),
            (Some(answer), Some(upload)) => fn_call_upload(model, v, answer, upload),
            (Some(item), None) if v.stream => fn_call_stream(model, v, item),
            (Some(response), None) => fn_call(model, v, response),
        });
    quote! {
        #[doc = #doc]
        #vis trait #emit: #krate::Endpoint<Out = #name> {
            #(#methods)*
        }
    }
}

/// `impl<T: ::netsock::Endpoint<Out = Enum>> EnumEmit for T {}`.
fn impl_emit(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let emit = format_ident!("{}Emit", name);
    quote! {
        impl<__NetsockT: #krate::Endpoint<Out = #name> + ?::core::marker::Sized> #emit
            for __NetsockT {}
    }
}

/// `trait EnumHandle: ::netsock::Endpoint<In = Enum>`: the `on_x` methods,
/// for whatever receives `Enum`.
fn trait_handle(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let vis = &model.vis;
    let handle = format_ident!("{}Handle", name);
    let doc = format!(
        "Typed methods for handling incoming [`{name}`] events and requests (on any socket \
         whose incoming enum is `{name}`), generated by `#[derive(Events)]`. Bring it into \
         scope where you call them."
    );
    let methods = model.variants.iter().enumerate().map(|(i, v)| {
        let index = i as u32;
        let on = fn_on(model, v, index, false);
        let on_with = fn_on(model, v, index, true);
        let once = v.response.is_none().then(|| fn_once(model, v, index));
        quote!(#on #on_with #once)
    });
    quote! {
        #[doc = #doc]
        #vis trait #handle: #krate::Endpoint<In = #name> {
            #(#methods)*
        }
    }
}

/// `impl<T: ::netsock::Endpoint<In = Enum>> EnumHandle for T {}`.
fn impl_handle(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let handle = format_ident!("{}Handle", name);
    quote! {
        impl<__NetsockT: #krate::Endpoint<In = #name> + ?::core::marker::Sized> #handle
            for __NetsockT {}
    }
}

/// A compile-time check, pointing at each response type, that it can travel.
fn assert_responses(model: &EventsModel) -> TokenStream {
    let krate = &model.krate;
    let checks = model
        .variants
        .iter()
        .flat_map(|v| v.response.iter().chain(&v.upload))
        .map(|r| {
            quote_spanned! {r.span()=>
                __netsock_assert_response::<#r>();
            }
        });
    quote! {
        const _: fn() = || {
            fn __netsock_assert_response<
                __NetsockR: #krate::__private::serde::Serialize
                    + #krate::__private::serde::de::DeserializeOwned
                    + ::core::marker::Send
                    + 'static,
            >() {}
            #(#checks)*
        };
    }
}

fn method_ident(v: &EventVariant, name: &str) -> syn::Ident {
    names::ident(name, v.ident.span())
}

fn params(v: &EventVariant) -> Vec<TokenStream> {
    v.fields
        .iter()
        .map(|f| {
            let (n, t) = (&f.name, &f.ty);
            quote!(#n: #t)
        })
        .collect()
}

/// `fn emit_x(&self, fields..)` for an event variant.
fn fn_emit(model: &EventsModel, v: &EventVariant) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let docs = &v.docs;
    let emit = method_ident(v, &v.names().send);
    let params = params(v);
    let value = construct(model, v);
    let doc = format!(
        "Sends the `{}` event (on a server: to every client).",
        v.ident
    );
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #doc]
        fn #emit(&self, #(#params),*)
            -> impl ::core::future::Future<Output = #krate::Result<()>> + ::core::marker::Send
        where
            Self: #krate::Emit<#name>,
        {
            #krate::Emit::<#name>::emit(self, #value)
        }
    }
}

/// `fn x(&self, fields..) -> Result<Response, CallError>` for a request variant.
fn fn_call(model: &EventsModel, v: &EventVariant, resp: &Type) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let docs = &v.docs;
    let call = method_ident(v, &v.names().send);
    let params = params(v);
    let value = construct(model, v);
    let doc = format!("Sends the `{}` request and waits for its reply.", v.ident);
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #doc]
        fn #call(&self, #(#params),*)
            -> impl ::core::future::Future<
                Output = ::core::result::Result<#resp, #krate::CallError>,
            > + ::core::marker::Send
        where
            Self: #krate::__private::Call<#name>,
        {
            #krate::__private::Call::<#name>::request::<#resp>(self, #value)
        }
    }
}

/// `fn x(&self, fields..) -> Result<ItemStream<Item>, CallError>` for a
/// stream request variant.
fn fn_call_stream(model: &EventsModel, v: &EventVariant, item: &Type) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let docs = &v.docs;
    let call = method_ident(v, &v.names().send);
    let params = params(v);
    let value = construct(model, v);
    let doc = format!(
        "Sends the `{}` stream request; once the peer accepts it, gives its items as they \
         come (dropping the stream cancels it).",
        v.ident
    );
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #doc]
        fn #call(&self, #(#params),*)
            -> impl ::core::future::Future<
                Output = ::core::result::Result<#krate::ItemStream<#item>, #krate::CallError>,
            > + ::core::marker::Send
        where
            Self: #krate::__private::CallStream<#name>,
        {
            #krate::__private::CallStream::<#name>::request_stream::<#item>(self, #value)
        }
    }
}

/// `fn x(&self, fields.., upload) -> Result<Response, CallError>` (or, for
/// a stream answer, `Result<ItemStream<Item>, CallError>`) for a request
/// variant that carries an upload.
fn fn_call_upload(
    model: &EventsModel,
    v: &EventVariant,
    answer: &Type,
    upload: &Type,
) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let docs = &v.docs;
    let call = method_ident(v, &v.names().send);
    let params = params(v);
    let value = construct(model, v);
    let items = upload_ident(v);
    let (output, make, doc) = match v.stream {
        true => (
            quote!(#krate::ItemStream<#answer>),
            quote!(request_upload_stream::<#answer, #upload, __NetsockM, __NetsockS>),
            format!(
                "Sends the `{}` request carrying the items of `{items}` (items of the declared \
                 type, or `Result`s of them, where an `Err` ends the upload with its error); once \
                 the peer accepts it, gives the items it answers with. The upload goes on, under \
                 the peer's credit, until it ends or the answer is dropped.",
                v.ident
            ),
        ),
        false => (
            quote!(#answer),
            quote!(request_upload::<#answer, #upload, __NetsockM, __NetsockS>),
            format!(
                "Sends the `{}` request carrying the items of `{items}` (items of the declared \
                 type, or `Result`s of them, where an `Err` ends the upload with its error), and \
                 waits for its reply. The upload goes on, under the peer's credit, until it ends \
                 or the reply comes.",
                v.ident
            ),
        ),
    };
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #doc]
        fn #call<__NetsockS, __NetsockM>(&self, #(#params,)* #items: __NetsockS)
            -> impl ::core::future::Future<
                Output = ::core::result::Result<#output, #krate::CallError>,
            > + ::core::marker::Send
        where
            Self: #krate::__private::CallStream<#name>,
            __NetsockS: #krate::__private::Stream + ::core::marker::Send + 'static,
            <__NetsockS as #krate::__private::Stream>::Item:
                #krate::handler::StreamItem<#upload, __NetsockM>,
            __NetsockM: 'static,
        {
            #krate::__private::CallStream::<#name>::#make(self, #value, #items)
        }
    }
}

/// The name of a stub's upload parameter: `upload`, unless a field has it.
fn upload_ident(v: &EventVariant) -> syn::Ident {
    let taken = v.fields.iter().any(|f| f.name == "upload");
    names::ident(
        if taken { "upload_items" } else { "upload" },
        v.ident.span(),
    )
}

/// `fn on_x(&self, handler)`, or with `with_socket` `fn on_x_with(&self,
/// handler)` whose handler also takes the socket; for a request variant the
/// value of the handler's future is the reply.
fn fn_on(model: &EventsModel, v: &EventVariant, index: u32, with_socket: bool) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let names = v.names();
    let on = method_ident(
        v,
        if with_socket {
            &names.on_with
        } else {
            &names.on
        },
    );
    let mut types: Vec<TokenStream> = v.fields.iter().map(|f| f.ty.to_token_stream()).collect();
    // A request's upload comes after its fields.
    let upload_local = names::hidden("__netsock_upload");
    let (upload_param, upload_arg) = match &v.upload {
        Some(u) => {
            types.push(quote!(#krate::ItemStream<#u>));
            (
                quote!(, #upload_local: #krate::ItemStream<#u>),
                quote!(#upload_local,),
            )
        }
        None => (quote!(), quote!()),
    };
    let socket_type = with_socket.then(|| quote!(Self,));
    let args = quote!((#socket_type #(#types,)*));
    let (pattern, locals) = pattern(model, v);
    let handler = names::hidden("__netsock_handler");
    let value = names::hidden("__netsock_value");
    let socket = names::hidden("__netsock_socket");
    let (socket_param, socket_arg, sized) = match with_socket {
        true => (
            quote!(#socket: Self,),
            quote!(#socket,),
            quote!(+ ::core::marker::Sized),
        ),
        false => (quote!(), quote!(), quote!()),
    };
    let takes = match (with_socket, v.upload.is_some()) {
        (true, false) => "the socket, then the fields",
        (false, false) => "the fields",
        (true, true) => "the socket, then the fields, then the upload's `ItemStream`",
        (false, true) => "the fields, then the upload's `ItemStream`",
    };
    let stream_bounds = match (&v.response, v.stream) {
        (Some(item), true) => quote! {
            __NetsockS: #krate::__private::Stream + ::core::marker::Send + 'static,
            <__NetsockS as #krate::__private::Stream>::Item:
                #krate::handler::StreamItem<#item, __NetsockI>,
            __NetsockI: 'static,
        },
        _ => quote!(),
    };
    let stream_params = v.stream.then(|| quote!(, __NetsockS, __NetsockI));
    let (register, bound, call, doc) = match &v.response {
        Some(_) if v.stream => (
            format_ident!("on_stream{}", if with_socket { "_with" } else { "" }),
            quote!(#krate::handler::RequestHandler<#args, __NetsockS, __NetsockM>),
            quote!(#krate::handler::RequestHandler::<#args, __NetsockS, __NetsockM>::call),
            format!(
                "Answers `{}` stream requests: `handler` takes {takes} as separate arguments, \
                 in declaration order, and its future gives the stream of items \
                 (`|..| async move {{ futures::stream::iter(..) }}`): items of the declared \
                 type, or `Result`s of them, where an `Err` ends the stream with its error. \
                 The stream is polled only as the caller's credit allows, and dropped if the \
                 caller cancels. Replaces any earlier handler.",
                v.ident
            ),
        ),
        None => (
            format_ident!("on_event{}", if with_socket { "_with" } else { "" }),
            quote!(#krate::handler::EventHandler<#args, __NetsockM>),
            quote!(#krate::handler::EventHandler::<#args, __NetsockM>::call),
            format!(
                "Handles `{}` events: `handler` takes {takes} as separate arguments, in \
                 declaration order, and returns a future (`|..| async move {{ .. }}`) of `()` or \
                 `Result<(), E>` (an error goes to the error hook). Replaces any earlier handler.",
                v.ident
            ),
        ),
        Some(r) => (
            format_ident!("on_request{}", if with_socket { "_with" } else { "" }),
            quote!(#krate::handler::RequestHandler<#args, #r, __NetsockM>),
            quote!(#krate::handler::RequestHandler::<#args, #r, __NetsockM>::call),
            format!(
                "Answers `{}` requests: `handler` takes {takes} as separate arguments, in \
                 declaration order, and the value of its future is the reply \
                 (`|..| async move {{ .. }}`). Replaces any earlier handler.",
                v.ident
            ),
        ),
    };
    let turbofish = match (&v.response, v.stream, &v.upload) {
        (Some(item), true, None) => quote!(::<#item, __NetsockI, __NetsockS, _, _>),
        (Some(item), true, Some(u)) => quote!(::<#u, #item, __NetsockI, __NetsockS, _, _>),
        (Some(_), false, Some(u)) => quote!(::<#u, _, _, _>),
        _ => quote!(),
    };
    // A request carrying an upload registers through `ReceiveUpload`.
    let (receive, register) = match &v.upload {
        Some(_) => {
            let stream = if v.stream { "_stream" } else { "" };
            let with = if with_socket { "_with" } else { "" };
            (
                quote!(ReceiveUpload),
                format_ident!("on_upload{stream}{with}"),
            )
        }
        None => (quote!(Receive), register),
    };
    quote! {
        #[doc = #doc]
        fn #on<__NetsockF, __NetsockFut, __NetsockM #stream_params>(&self, #handler: __NetsockF)
        where
            Self: #krate::__private::#receive<#name> #sized,
            __NetsockF: ::core::ops::Fn(#socket_type #(#types),*) -> __NetsockFut,
            __NetsockF: #bound,
            #stream_bounds
        {
            #krate::__private::#receive::<#name>::#register #turbofish(
                self,
                #index,
                move |#socket_param #value: #name #upload_param| match #value {
                    #pattern => #call(&#handler, (#socket_arg #(#locals,)* #upload_arg)),
                    #[allow(unreachable_patterns)]
                    _ => ::core::unreachable!("netsock dispatches by variant index"),
                },
            )
        }
    }
}

/// `fn once_x(&self)`: the next `X` event's fields (a tuple of them; the
/// field itself when there is one; `()` for none).
fn fn_once(model: &EventsModel, v: &EventVariant, index: u32) -> TokenStream {
    let krate = &model.krate;
    let name = &model.ident;
    let Some(once) = v.names().once else {
        return quote!();
    };
    let once = method_ident(v, &once);
    let (pattern, locals) = pattern(model, v);
    let types: Vec<&Type> = v.fields.iter().map(|f| &f.ty).collect();
    let (output, value) = match types.len() {
        1 => (quote!(#(#types)*), quote!(#(#locals)*)),
        _ => (quote!((#(#types),*)), quote!((#(#locals),*))),
    };
    let next = names::hidden("__netsock_next");
    let err = names::hidden("__netsock_err");
    let doc = format!(
        "Waits for the next `{}` event and gives its fields; that event goes here instead of \
         to the `on_*` handler. Fails with `Error::Disconnected` if the socket closes for good \
         first. Several calls waiting get one event each, oldest first.",
        v.ident
    );
    quote! {
        #[doc = #doc]
        fn #once(&self)
            -> impl ::core::future::Future<Output = #krate::Result<#output>> + ::core::marker::Send
        where
            Self: #krate::__private::Receive<#name>,
        {
            let #next = #krate::__private::Receive::<#name>::once_event(self, #index);
            async move {
                match #next.await {
                    ::core::result::Result::Ok(#pattern) => ::core::result::Result::Ok(#value),
                    #[allow(unreachable_patterns)]
                    ::core::result::Result::Ok(_) => {
                        ::core::unreachable!("netsock dispatches by variant index")
                    }
                    ::core::result::Result::Err(#err) => ::core::result::Result::Err(#err),
                }
            }
        }
    }
}
