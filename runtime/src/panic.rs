//! The text of a caught panic, for logs and error replies.

use std::any::Any;

/// The message a panic was raised with (`panic!("…")` gives a `&str` or a
/// `String`), or a placeholder for any other payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
