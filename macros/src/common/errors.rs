//! The error accumulator of every conflictkit macro: report every problem in
//! one compile (serde's `Ctxt`, without its panicking drop guard), and guard
//! options against being set twice.

use std::fmt::Display;

use quote::ToTokens;

/// Collects `syn::Error`s and folds them with `syn::Error::combine`.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// An empty accumulator.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// The value of `result`, or `None` after recording its error.
    pub(crate) fn capture<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// Moves every error of `other` into `self`.
    pub(crate) fn append(&mut self, other: Errors) {
        if let Some(error) = other.combined {
            self.push(error);
        }
    }

    /// Whether no error was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// The `compile_error!` invocations of every recorded error (nothing when
    /// there is none), to emit next to the best-effort expansion.
    pub(crate) fn to_compile_errors(&self) -> proc_macro2::TokenStream {
        self.combined
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }

    /// `Ok(())`, or every recorded error combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// An option that may be set once: a second setting is an error spanned on
/// the second key.
pub(crate) struct Once<T> {
    value: Option<T>,
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> Once<T> {
    /// Sets the option whose key is `key`; a second call is an error
    /// "duplicate {what}; keep only one" spanned on that key (`what` describes
    /// the option, e.g. "`auto_number` option `start`").
    pub(crate) fn set(
        &mut self,
        key: &impl ToTokens,
        what: impl Display,
        value: T,
    ) -> syn::Result<()> {
        if self.value.is_some() {
            return Err(syn::Error::new_spanned(
                key,
                format_args!("duplicate {what}; keep only one"),
            ));
        }
        self.value = Some(value);
        Ok(())
    }

    /// The value, if set.
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The value, if set.
    pub(crate) fn into_inner(self) -> Option<T> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn combines_in_order() {
        assert!(Errors::new().finish().is_ok());
        let mut errors = Errors::new();
        errors.push(syn::Error::new(Span::call_site(), "first"));
        assert_eq!(errors.capture(Ok::<_, syn::Error>(3)), Some(3));
        errors.capture::<()>(Err(syn::Error::new(Span::call_site(), "second")));
        let messages: Vec<String> = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn once_rejects_a_second_value() {
        let key = syn::Ident::new("start", Span::call_site());
        let mut once = Once::default();
        assert!(once.set(&key, "option `start`", 1).is_ok());
        assert_eq!(once.get(), Some(&1));
        let err = once
            .set(&key, "option `start`", 2)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("duplicate option `start`; keep only one")
        );
        assert_eq!(once.into_inner(), Some(1));
    }
}
