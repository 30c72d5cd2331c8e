//! Collecting errors: every check reports its error, pointing at the
//! offending token, and carries on, so one compile shows every mistake.

use proc_macro2::TokenStream;
use quote::quote;

/// Errors collected while parsing, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds `error` to the ones reported.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds the error of `result`, if any.
    pub(crate) fn push_result(&mut self, result: syn::Result<()>) {
        if let Err(e) = result {
            self.push(e);
        }
    }

    /// `Ok` when nothing was pushed, else every error, combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The user's `item` unchanged, next to the compile `error`: for an
/// attribute macro, so that the rest of the program (and the editor) keeps
/// seeing the item while the error is fixed.
pub(crate) fn beside(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}
