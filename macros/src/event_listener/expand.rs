//! Validation of the handler function and generation of its registration.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, ItemFn, ReturnType, Type};

use super::args::{self, Args};

/// Entry point: the original function, unchanged, plus its registration; or
/// the function plus the errors when anything is wrong.
pub(crate) fn event_listener(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, mut errors) = args::parse(args);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            push(&mut errors, e);
            let errors = errors.map(syn::Error::into_compile_error);
            return quote!(#item #errors);
        }
    };
    let shape = validate(&func, &args, &mut errors);
    match (errors, shape) {
        (None, Some(shape)) => generate(&func, &args, &shape),
        (errors, _) => {
            let errors = errors.map(syn::Error::into_compile_error);
            quote!(#func #errors)
        }
    }
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// What the generated code needs from the signature.
enum Shape {
    /// Parameters produced by type (`FromEvent`): the event data, `State<T>`,
    /// `EventContext`, in any order.
    Params(Vec<Type>),
    /// `fn(event_name: &str, data: Value)` (every event): the span of the data type.
    Any(Span),
    /// `transactional`: the transaction (`&Txn`, its type), then parameters
    /// produced by type; the return type `Result<(), E>`.
    Transactional(Box<Type>, Vec<Type>, Box<Type>),
}

fn validate(func: &ItemFn, args: &Args, errors: &mut Option<syn::Error>) -> Option<Shape> {
    let named = args.named;
    let sig = &func.sig;
    if let Some(unsafety) = &sig.unsafety {
        push(
            errors,
            syn::Error::new(unsafety.span(), "an event handler cannot be `unsafe fn`"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        push(
            errors,
            syn::Error::new(variadic.span(), "an event handler cannot be variadic"),
        );
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            push(
                errors,
                syn::Error::new(
                    param.span(),
                    "an event handler cannot be generic: the listener must know the concrete type to decode the data into",
                ),
            );
        }
    }
    if let Some(receiver) = sig.receiver() {
        push(
            errors,
            syn::Error::new(
                receiver.span(),
                "`#[event_listener]` goes on free functions, not methods: call the method from a free function",
            ),
        );
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
    if let Some(keyword) = &args.transactional {
        return validate_transactional(func, keyword, types, errors);
    }
    if let Some(txn) = types.iter().find(|ty| is_txn_ref(ty)) {
        push(
            errors,
            syn::Error::new(
                txn.span(),
                "a handler taking the transaction `&Txn` must be transactional: `#[event_listener(\"txupdate\", transactional)]` (the listener then runs it in a managed transaction that records the delivery in the inbox)",
            ),
        );
        return None;
    }
    validate_params(named, &mut types, errors)
}

/// A transactional handler: `async fn(txn: &Txn, params…) -> Result<(), E>`.
fn validate_transactional(
    func: &ItemFn,
    keyword: &syn::Path,
    mut types: Vec<&Type>,
    errors: &mut Option<syn::Error>,
) -> Option<Shape> {
    let sig = &func.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        push(
            errors,
            syn::Error::new(
                sig.fn_token.span(),
                "a transactional event handler must be an `async fn`: it runs inside the listener's managed transaction",
            ),
        );
        ok = false;
    }
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => Some((**ty).clone()),
        ReturnType::Default => {
            push(
                errors,
                syn::Error::new(
                    sig.ident.span(),
                    "a transactional event handler returns `Result<(), E>` (e.g. `conflictkit::Error`), so that a database error rolls the transaction back and a conflict replays it",
                ),
            );
            ok = false;
            None
        }
    };
    let txn = match types.first() {
        Some(Type::Reference(r)) if r.mutability.is_none() => Some((*r.elem).clone()),
        Some(other) => {
            push(
                errors,
                syn::Error::new(
                    other.span(),
                    "the first parameter of a transactional event handler is the transaction: `txn: &Txn`",
                ),
            );
            None
        }
        None => {
            push(
                errors,
                syn::Error::new(
                    keyword.span(),
                    "a transactional event handler takes the transaction as its first parameter: `async fn on_event(txn: &Txn, …)`",
                ),
            );
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
fn validate_params(
    named: bool,
    types: &mut [&Type],
    errors: &mut Option<syn::Error>,
) -> Option<Shape> {
    // The original's every-event shape: the name as `&str`, then the data.
    if !named && types.len() == 2 {
        if is_str_ref(types[0]) {
            return Some(Shape::Any(types[1].span()));
        }
        if is_string(types[0]) {
            push(
                errors,
                syn::Error::new(
                    types[0].span(),
                    "the first argument of a handler of every event is the event name: `event_name: &str` (or take `ctx: EventContext` and call `ctx.event_name()`)",
                ),
            );
            return None;
        }
    }
    let mut ok = true;
    for ty in types.iter() {
        match ty {
            Type::Reference(r) if is_txn_ref(ty) => {
                push(
                    errors,
                    syn::Error::new(
                        r.span(),
                        "the transaction `&Txn` is the first parameter of a transactional event handler",
                    ),
                );
                ok = false;
            }
            Type::Reference(r) => {
                let hint = if is_str_ref(ty) {
                    "; the event name is `EventContext::event_name()`: take `ctx: EventContext`"
                } else {
                    ""
                };
                push(
                    errors,
                    syn::Error::new(
                        r.span(),
                        format!(
                            "event handler parameters are owned values (the event data `T`, `State<T>` or `EventContext`): take `T`, not `&T`{hint}"
                        ),
                    ),
                );
                ok = false;
            }
            Type::ImplTrait(t) => {
                push(
                    errors,
                    syn::Error::new(
                        t.span(),
                        "an event handler parameter needs a concrete type (the event data implementing `serde::Deserialize`, `State<T>` or `EventContext`), not `impl Trait`",
                    ),
                );
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

fn generate(func: &ItemFn, args: &Args, shape: &Shape) -> TokenStream {
    let krate = args
        .krate
        .clone()
        .unwrap_or_else(crate::common::crate_path::default_crate_path);
    let rt = quote!(#krate::__private::events);
    let ident = &func.sig.ident;
    let name = ident.to_string();
    let is_async = func.sig.asyncness.is_some();
    // Errors about the return type land on it.
    let ret_span = match &func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let mut attempt = quote!();
    let (body, needs) = match shape {
        Shape::Params(types) => {
            let (extract, needs, call_args) = produce(types, &rt, ret_span);
            let ident = syn::Ident::new(&ident.to_string(), ret_span);
            let call = if is_async {
                quote_spanned!(ret_span=> #rt::call_async(#ident, (#(#call_args,)*)))
            } else {
                quote_spanned!(ret_span=> #rt::call_blocking(#ident, (#(#call_args,)*)))
            };
            (
                quote! {
                    #(#extract)*
                    ::core::result::Result::Ok(#call)
                },
                needs,
            )
        }
        Shape::Transactional(txn, types, ret) => {
            let (extract, needs, call_args) = produce(types, &rt, ret_span);
            let extract: Vec<_> = extract.collect();
            let ident = syn::Ident::new(&ident.to_string(), ret_span);
            // Errors about the transaction's type land on it; errors about
            // the return type (not `Result<(), E>`, an `E` the resolver
            // cannot use) on the return type.
            let txn_check = quote_spanned!(txn.span()=> let __ck_txn: &'t #txn = __ck_txn;);
            let output = quote_spanned!(ret.span()=> <#ret as #rt::TxnOutput>::Error);
            let future = quote_spanned!(ret.span()=>
                ::core::result::Result::Ok(::std::boxed::Box::pin(#ident(__ck_txn, #(#call_args,)*)))
            );
            let prepare = quote_spanned!(ret.span()=>
                #rt::prepare_transactional::<#output>(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    __ck_event, __ck_context, __ck_state, __ck_attempt,
                )
            );
            attempt = quote! {
                fn __ck_attempt<'t>(
                    __ck_txn: &'t #rt::Txn,
                    __ck_event: &#rt::Event,
                    __ck_context: &#rt::EventContext,
                    __ck_state: &#rt::DynState,
                ) -> ::core::result::Result<#rt::TxnFuture<'t, #output>, #rt::ExtractError> {
                    #(#extract)*
                    #txn_check
                    #future
                }
            };
            (
                quote! {
                    // Produced once now, so undecodable data is answered 400
                    // before the transaction begins; again on every run.
                    #(#extract)*
                    let _ = (#(#call_args,)*);
                    #prepare
                },
                needs,
            )
        }
        // The data type keeps its span (type errors land on it); the rest of
        // the call is spanned on the return type.
        Shape::Any(data_span) => {
            let data = quote_spanned!(*data_span=> __ck_data);
            let call = if is_async {
                quote_spanned!(ret_span=> #rt::prepare_any_async(__ck_event, |__ck_name, __ck_data| async move { #ident(&__ck_name, #data).await }))
            } else {
                quote_spanned!(ret_span=> #rt::prepare_any_sync(__ck_event, |__ck_name, __ck_data| #ident(&__ck_name, #data)))
            };
            (
                quote! {
                    let _ = (__ck_context, __ck_state);
                    #call
                },
                quote!(&[]),
            )
        }
    };
    let event = match &args.event {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let timeout = match &args.timeout_ms {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let registration = if args.transactional.is_some() {
        quote!(.transactional())
    } else {
        quote!()
    };
    quote! {
        #func

        const _: () = {
            #attempt
            fn __ck_prepare(
                __ck_event: &#rt::Event,
                __ck_context: &#rt::EventContext,
                __ck_state: &#rt::DynState,
            ) -> ::core::result::Result<#rt::HandlerFuture, #rt::ExtractError> {
                #body
            }
            #krate::__private::inventory::submit! {
                #rt::Registration::new(
                    #event,
                    ::core::concat!(::core::module_path!(), "::", #name),
                    #timeout,
                    __ck_prepare,
                    #needs,
                )#registration
            }
        };
    }
}

/// The statements producing each parameter by its type (errors land on the
/// parameter), the parameters' state needs, and the locals to call with
/// (spanned on the return type, so errors about it land there).
fn produce<'a>(
    types: &'a [Type],
    rt: &'a TokenStream,
    ret_span: Span,
) -> (
    impl Iterator<Item = TokenStream> + 'a,
    TokenStream,
    Vec<syn::Ident>,
) {
    let args: Vec<_> = (0..types.len())
        .map(|i| quote::format_ident!("__ck_arg{}", i))
        .collect();
    let extract = types.iter().zip(args).map(move |(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg = <#ty as #rt::FromEvent<#rt::DynState>>::from_event(
                __ck_event, __ck_context, __ck_state,
            )?;
        }
    });
    let needs = types.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            <#ty as #rt::FromEvent<#rt::DynState>>::state_need as #rt::NeedFn
        }
    });
    let call_args = (0..types.len())
        .map(|i| quote::format_ident!("__ck_arg{}", i, span = ret_span))
        .collect();
    (extract, quote!(&[#(#needs),*]), call_args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        event_listener(args, item).to_string()
    }

    #[test]
    fn registers_a_typed_async_handler() {
        let out = expand(
            quote!("txupdate", timeout_ms = 50),
            quote!(
                async fn on_tx(u: Update) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("call_async"), "{out}");
        assert!(out.contains("FromEvent"), "{out}");
        assert!(
            out.contains(":: core :: option :: Option :: Some (\"txupdate\")"),
            "{out}"
        );
        assert!(out.contains("Some (50)"), "{out}");
        assert!(out.contains("inventory :: submit !"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn parameters_are_produced_by_type_each_spanned_on_its_own() {
        let out = expand(
            quote!("txupdate"),
            quote!(
                async fn on_tx(State(app): State<App>, ctx: EventContext, u: Update) {}
            ),
        );
        for ty in ["State < App >", "EventContext", "Update"] {
            assert!(
                out.contains(&format!(
                    "< {ty} as :: conflictkit :: __private :: events :: FromEvent"
                )),
                "{ty}: {out}"
            );
        }
        assert!(
            out.contains("call_async (on_tx , (__ck_arg0 , __ck_arg1 , __ck_arg2 ,))"),
            "{out}"
        );
        assert!(out.contains("state_need as"), "{out}");
    }

    #[test]
    fn every_event_sync_handler_borrows_the_name() {
        let out = expand(
            quote!(),
            quote!(
                fn all(name: &str, data: Value) {}
            ),
        );
        assert!(out.contains("prepare_any_sync"), "{out}");
        assert!(out.contains("all (& __ck_name , __ck_data)"), "{out}");
    }

    #[test]
    fn crate_override_roots_every_path() {
        let out = expand(
            quote!("x", crate = "my::ck"),
            quote!(
                fn f(d: u8) {}
            ),
        );
        assert!(
            out.contains("my :: ck :: __private :: events :: call_blocking"),
            "{out}"
        );
        assert!(!out.contains(":: conflictkit"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_register_nothing() {
        let out = expand(
            quote!(42),
            quote!(
                fn f(a: &u8, b: u8) {}
            ),
        );
        assert!(out.contains("fn f (a : & u8 , b : u8) { }"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("submit"), "{out}");
    }
}
