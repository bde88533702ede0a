//! Checks of the handler function: a free, non-generic, safe function whose
//! parameters are produced by type (or the every-event shape), and, for a
//! `transactional` handler, an `async fn` taking `&Txn` first and returning
//! `Result<(), E>`. What it finds is the [`Shape`] that
//! [`expand`](super::expand) registers.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, ItemFn, ReturnType, Type};

use super::args::Args;
use crate::common::errors::Errors;

/// What the generated code needs from the signature.
pub(super) enum Shape {
    /// Parameters produced by type (`FromEvent`): the event data, `State<T>`,
    /// `EventContext`, in any order.
    Params(Vec<Type>),
    /// `fn(event_name: &str, data: Value)` (every event): the span of the data type.
    Any(Span),
    /// `transactional`: the transaction (`&Txn`, its type), then parameters
    /// produced by type; the return type `Result<(), E>`.
    Transactional(Box<Type>, Vec<Type>, Box<Type>),
}

/// Checks `func` against `args`; `None` when it cannot be registered (errors pushed).
pub(super) fn check(func: &ItemFn, args: &Args, errors: &mut Errors) -> Option<Shape> {
    let named = args.named;
    let sig = &func.sig;
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, "an event handler cannot be `unsafe fn`");
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "an event handler cannot be variadic");
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.spanned(
                param,
                "an event handler cannot be generic: the listener must know the concrete type to \
                 decode the data into",
            );
        }
    }
    if let Some(receiver) = sig.receiver() {
        errors.spanned(receiver, "`#[event_listener]` goes on free functions, not methods: call the method from a free function");
        return None;
    }
    let mut types: Vec<&Type> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) => Some(&*pt.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    if let Some(keyword) = args.transactional.get() {
        return validate_transactional(func, keyword, types, errors);
    }
    if let Some(txn) = types.iter().find(|ty| is_txn_ref(ty)) {
        errors.spanned(txn, "a handler taking the transaction `&Txn` must be transactional: `#[event_listener(\"txupdate\", transactional)]` (the listener then runs it in a managed transaction that records the delivery in the inbox)");
        return None;
    }
    validate_params(named, &mut types, errors)
}

/// A transactional handler: `async fn(txn: &Txn, params…) -> Result<(), E>`.
fn validate_transactional(
    func: &ItemFn,
    keyword: &syn::Path,
    mut types: Vec<&Type>,
    errors: &mut Errors,
) -> Option<Shape> {
    let sig = &func.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.spanned(sig.fn_token, "a transactional event handler must be an `async fn`: it runs inside the listener's managed transaction");
        ok = false;
    }
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => Some((**ty).clone()),
        ReturnType::Default => {
            errors.spanned(&sig.ident, "a transactional event handler returns `Result<(), E>` (e.g. `conflictkit::Error`), so that a database error rolls the transaction back and a conflict replays it");
            ok = false;
            None
        }
    };
    let txn = match types.first() {
        Some(Type::Reference(r)) if r.mutability.is_none() => Some((*r.elem).clone()),
        Some(txn) if is_txn_ref(txn) => {
            errors.spanned(
                txn,
                "the transaction is shared with the resolver: take `&Txn`, not `&mut Txn`",
            );
            None
        }
        Some(other) => {
            errors.spanned(other, "the first parameter of a transactional event handler is the transaction: `txn: &Txn`");
            None
        }
        None => {
            errors.spanned(keyword, "a transactional event handler takes the transaction as its first parameter: `async fn on_event(txn: &Txn, …)`");
            None
        }
    };
    let txn = txn?;
    types.remove(0);
    let params = validate_params(true, &mut types, errors);
    match (ok, params, ret) {
        (true, Some(Shape::Params(params)), Some(ret)) => {
            Some(Shape::Transactional(Box::new(txn), params, Box::new(ret)))
        }
        _ => None,
    }
}

/// Parameters produced by type (or the every-event shape).
fn validate_params(named: bool, types: &mut [&Type], errors: &mut Errors) -> Option<Shape> {
    // The original's every-event shape: the name as `&str`, then the data.
    if !named && types.len() == 2 {
        if is_str_ref(types[0]) {
            return Some(Shape::Any(types[1].span()));
        }
        if is_string(types[0]) {
            errors.spanned(types[0], "the first argument of a handler of every event is the event name: `event_name: &str` (or take `ctx: EventContext` and call `ctx.event_name()`)");
            return None;
        }
    }
    let mut ok = true;
    for ty in types.iter() {
        match ty {
            Type::Reference(r) if is_txn_ref(ty) => {
                errors.spanned(r, "the transaction `&Txn` is the first parameter of a transactional event handler");
                ok = false;
            }
            Type::Reference(r) => {
                let hint = if is_str_ref(ty) {
                    "; the event name is `EventContext::event_name()`: take `ctx: EventContext`"
                } else {
                    ""
                };
                errors.spanned(r, format!(
                            "event handler parameters are owned values (the event data `T`, `State<T>` or `EventContext`): take `T`, not `&T`{hint}"
                        ));
                ok = false;
            }
            Type::ImplTrait(t) => {
                errors.spanned(t, "an event handler parameter needs a concrete type (the event data implementing `serde::Deserialize`, `State<T>` or `EventContext`), not `impl Trait`");
                ok = false;
            }
            _ => {}
        }
    }
    ok.then(|| Shape::Params(types.iter().map(|ty| (*ty).clone()).collect()))
}

/// `&Txn` (any path ending in `Txn`).
fn is_txn_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => matches!(&*r.elem, Type::Path(p)
            if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Txn")),
        Type::Group(g) => is_txn_ref(&g.elem),
        _ => false,
    }
}

fn is_str_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => {
            matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"))
        }
        Type::Group(g) => is_str_ref(&g.elem),
        _ => false,
    }
}

fn is_string(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "String")
        }
        Type::Group(g) => is_string(&g.elem),
        _ => false,
    }
}
