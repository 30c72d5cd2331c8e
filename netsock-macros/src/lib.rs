//! Procedural macros for [netsock](https://docs.rs/netsock).
//!
//! This crate is re-exported by `netsock`; depend on `netsock`, not on this crate.

use proc_macro::TokenStream;

mod events;

/// Derives `netsock::Events` for an enum, plus a `{Enum}Ext` trait of typed
/// methods. See `netsock::Events`.
#[proc_macro_derive(Events, attributes(request, netsock))]
pub fn derive_events(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    events::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
