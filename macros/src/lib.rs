//! Procedural macros of conflictkit. Use them through the `conflictkit` crate.

mod auto_number;
mod common;
mod event_listener;

use proc_macro::TokenStream;

/// Registers a function as a handler of the conflictkit event listener.
///
/// - `#[event_listener("txupdate")]` on `fn(data: T)` (sync or async), where
///   `T: serde::Deserialize`: handles the event `txupdate`; the data is
///   decoded into `T` (the listener answers 400 when it does not decode).
/// - `#[event_listener]` on `fn(event_name: &str, data: serde_json::Value)`:
///   handles every event.
///
/// The function may return `()` or `Result<(), E>` with `E: Display`; an
/// error, a panic or a timeout makes the listener answer 500. Sync functions
/// run on tokio's blocking pool. Options: `timeout_ms = N` (per-handler time
/// limit) and `crate = "path"` (when conflictkit is re-exported elsewhere).
///
/// The function stays as written and is registered process-wide at start-up
/// (through `inventory`, re-exported by conflictkit): every
/// [`Listener`](../conflictkit/events/struct.Listener.html) of the program
/// dispatches to it.
///
/// Examples are in the `conflictkit` crate's documentation of this macro.
///
/// # Equivalent code
///
/// The function is kept unchanged; next to it:
///
/// ```text
/// const _: () = {
///     fn __ck_prepare(event: &Event) -> Result<HandlerFuture, DecodeError> {
///         prepare_async::<TxUpdate, _, _>(event, on_txupdate)
///     }
///     inventory::submit! { Registration::new(Some("txupdate"), "my_crate::on_txupdate", None, __ck_prepare) }
/// };
/// ```
#[proc_macro_attribute]
pub fn event_listener(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    event_listener::event_listener(args.into(), item.into()).into()
}

/// Derives [`AutoNumber`](https://docs.rs/conflictkit/latest/conflictkit/trait.AutoNumber.html)
/// for a fieldless enum: its variants are numbered 1, 2, 3 … in declaration order.
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
/// enum Subsystem { Database, StatusServer, Backend, Broadcast }
///
/// assert_eq!(Subsystem::Broadcast.value(), 4);
/// assert_eq!(Subsystem::from_value(2), Some(Subsystem::StatusServer));
/// assert_eq!(Subsystem::try_from(3), Ok(Subsystem::Backend));
/// assert_eq!(i32::from(Subsystem::Database), 1);
/// assert_eq!(Subsystem::Backend.to_string(), "Backend");
/// assert_eq!("Broadcast".parse(), Ok(Subsystem::Broadcast));
/// assert_eq!(Subsystem::all().last(), Some(Subsystem::Broadcast));
/// ```
///
/// Besides the [`AutoNumber`] trait (`value`, `from_value`, `name`,
/// `from_name`, `VARIANTS`, `all`, …) it implements `TryFrom<Repr>`,
/// `From<Enum> for Repr`, `Display` (the variant name) and `FromStr` (from the
/// variant name). The enum's own discriminants stay Rust's (0, 1, …): use
/// `.value()`, not `as`.
///
/// # Options
///
/// `#[auto_number(...)]` on the enum:
///
/// - `start = N`: the value of the first variant (default 1; may be negative).
/// - `repr = i16`: the integer type, one of `i8`, `i16`, `i32` (default),
///   `i64`, `u8`, `u16`, `u32`, `u64`. Every value must fit: too many variants
///   for the type is a compile error.
/// - `serde = "number" | "name" | "none"`: with the `serde` feature (on by
///   default), the enum serializes as its number (like the Python original's
///   `.value`), as its variant name, or not at all (write your own impls).
///   Giving this option without the feature is a compile error.
/// - `crate = "path"`: where conflictkit is, if not `::conflictkit`.
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug, PartialEq)]
/// #[auto_number(start = 0, repr = u8, serde = "name")]
/// enum Level { Low, High }
///
/// assert_eq!(Level::High.value(), 1u8);
/// assert_eq!(serde_json::to_string(&Level::High).unwrap(), r#""High""#);
/// ```
///
/// With the `sea-orm-value` feature (on by default) the enum is a sea-orm
/// value type stored as an integer column of its repr, so it can be an
/// entity field (`Option<Enum>` for a nullable column).
///
/// # Errors
///
/// Structs, unions, generic enums, variants with fields and explicit
/// discriminants are compile errors, as are unknown or repeated options. A
/// zero-variant enum is fine.
///
/// ```compile_fail
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber)]
/// enum Shape { Point, Circle(f64) } // `Shape::Circle` has fields
/// ```
///
/// # Equivalent code
///
/// For `enum Subsystem { Database, StatusServer }` the derive generates, inside
/// a `const _: () = { … };`:
///
/// ```ignore
/// impl ::conflictkit::AutoNumber for Subsystem {
///     type Repr = i32;
///     const ENUM_NAME: &'static str = "Subsystem";
///     const VARIANTS: &'static [Self] = &[Self::Database, Self::StatusServer];
///     const VARIANT_NAMES: &'static [&'static str] = &["Database", "StatusServer"];
///     fn value(&self) -> i32 { match *self { Self::Database => 1, Self::StatusServer => 2 } }
///     fn from_value(value: i32) -> Option<Self> {
///         match value { 1 => Some(Self::Database), 2 => Some(Self::StatusServer), _ => None }
///     }
///     fn name(&self) -> &'static str { /* "Database" | "StatusServer" */ }
///     fn from_name(name: &str) -> Option<Self> { /* the reverse */ }
/// }
/// impl TryFrom<i32> for Subsystem { type Error = conflictkit::auto_number::TryFromValueError<Self>; /* … */ }
/// impl From<Subsystem> for i32 { /* value() */ }
/// impl Display for Subsystem { /* name() */ }
/// impl FromStr for Subsystem { type Err = conflictkit::auto_number::ParseNameError<Self>; /* … */ }
/// // serde::{Serialize, Deserialize} and the sea-orm value traits, when their features are on
/// ```
///
/// [`AutoNumber`]: https://docs.rs/conflictkit/latest/conflictkit/trait.AutoNumber.html
#[proc_macro_derive(AutoNumber, attributes(auto_number))]
pub fn derive_auto_number(item: TokenStream) -> TokenStream {
    auto_number::derive(item.into()).into()
}
