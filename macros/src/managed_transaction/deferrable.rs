//! `deferrable`: a read-only report that can never conflict (the runtime's
//! `CallOptions::deferrable`, which implies `read_only` and begins
//! `SERIALIZABLE READ ONLY DEFERRABLE` on PostgreSQL). A flag, given once;
//! `read_only` beside it is allowed and changes nothing. What contradicts
//! `read_only` contradicts it too (see `Options::read_only_option`), and so
//! does an isolation other than SERIALIZABLE, which the runtime would
//! override.

use proc_macro2::Span;

use super::args::{Isolation, Options};
use crate::common::errors::Errors;
use crate::common::options::MacroOption;

impl Options {
    pub(super) fn set_deferrable(&mut self, option: &MacroOption) -> syn::Result<()> {
        let span = option.flag()?;
        self.deferrable.set(option.key(), option.describe(), span)
    }

    /// The option that makes the call read-only, by name and span:
    /// `read_only`, else `deferrable` (which implies it).
    pub(super) fn read_only_option(&self) -> Option<(&'static str, Span)> {
        match (self.read_only.get(), self.deferrable.get()) {
            (Some(&span), _) => Some(("read_only", span)),
            (None, Some(&span)) => Some(("deferrable", span)),
            (None, None) => None,
        }
    }

    /// `deferrable` with an isolation it would override.
    pub(super) fn check_deferrable(&self, errors: &mut Errors) {
        let (Some(&deferrable), Some(&(isolation, span))) =
            (self.deferrable.get(), self.isolation.get())
        else {
            return;
        };
        if isolation == Isolation::Serializable {
            return;
        }
        let mut error = syn::Error::new(
            span,
            "`deferrable` contradicts this isolation: a deferrable report runs `SERIALIZABLE \
             READ ONLY DEFERRABLE` (a snapshot that can never conflict), whatever `isolation` \
             says; drop `isolation`, or drop `deferrable` for a plain `read_only` call at this \
             isolation",
        );
        error.combine(syn::Error::new(deferrable, "`deferrable` is given here"));
        errors.push(error);
    }
}
