//! The checks of `#[managed_transaction]`'s options against each other,
//! once each was read (`args`): every contradiction is an error spanned on
//! the offending option.

use syn::spanned::Spanned;

use super::args::{Options, SqliteMode};
use crate::common::errors::Errors;

impl Options {
    /// Every check of the options against each other.
    pub(super) fn check_together(&self, errors: &mut Errors) {
        self.check_idempotency(errors);
        self.check_batch(errors);
        self.check_deferrable(errors);
        if let (
            Some((read_only, _)),
            Some(&(mode @ (SqliteMode::Immediate | SqliteMode::Exclusive), span)),
        ) = (self.read_only_option(), self.sqlite_mode.get())
        {
            let name = if mode == SqliteMode::Immediate {
                "immediate"
            } else {
                "exclusive"
            };
            errors.push(syn::Error::new(
                span,
                format!(
                    "`{read_only}` contradicts `sqlite_mode = \"{name}\"`: an {name} transaction \
                     takes SQLite's write lock at BEGIN, which a read-only transaction never needs; \
                     drop `sqlite_mode` (read-only transactions begin deferred) or drop \
                     `{read_only}`"
                ),
            ));
        }
    }
}

impl Options {
    /// `read_only` with a key, and the key's companions without it.
    fn check_idempotency(&self, errors: &mut Errors) {
        if let (Some((name, read_only)), Some(key)) =
            (self.read_only_option(), self.idempotency_key.get())
        {
            let mut error = syn::Error::new(
                read_only,
                format!(
                    "`{name}` contradicts `idempotency_key`: a read-only call changes nothing, so \
                     running it again is harmless and there is nothing to make idempotent (and \
                     storing the key is a write); drop `idempotency_key`, or drop `{name}` if the \
                     call writes"
                ),
            );
            error.combine(syn::Error::new_spanned(
                key,
                "the idempotency key is given here",
            ));
            errors.push(error);
        }
        if self.idempotency_key.get().is_none() {
            let alone = [
                ("fingerprint", self.fingerprint.get().map(Spanned::span)),
                ("store_errors", self.store_errors.get().copied()),
            ];
            for (name, span) in alone {
                if let Some(span) = span {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "`{name}` only applies to an idempotent call: add \
                             `idempotency_key = <expr>` (the request's key), or drop `{name}`"
                        ),
                    ));
                }
            }
        }
    }
}

impl Options {
    /// `batch` with what it cannot go with.
    fn check_batch(&self, errors: &mut Errors) {
        let Some(&(_, batch)) = self.batch.get() else {
            return;
        };
        if let Some((name, _)) = self.read_only_option() {
            errors.push(syn::Error::new(
                batch,
                format!(
                    "`batch` has no use on a `{name}` call: batching saves `COMMIT`s of writes, \
                     and reads never wait for each other; drop `batch`"
                ),
            ));
        }
        if let Some(key) = self.idempotency_key.get() {
            let mut error = syn::Error::new(
                batch,
                "`batch` cannot be combined with `idempotency_key`: an idempotent call looks its \
                 key up in a transaction of its own; drop one of them",
            );
            error.combine(syn::Error::new_spanned(
                key,
                "the idempotency key is given here",
            ));
            errors.push(error);
        }
    }
}
