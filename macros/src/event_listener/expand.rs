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
    let shape = validate(&func, args.named, &mut errors);
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
    /// `fn(data: T)`: the type of the data.
    Typed(Box<Type>),
    /// `fn(event_name: &str, data: Value)`: the span of the data type.
    Any(Span),
}

fn inputs_span(func: &ItemFn) -> Span {
    if func.sig.inputs.is_empty() {
        func.sig.paren_token.span.join()
    } else {
        func.sig.inputs.span()
    }
}

fn validate(func: &ItemFn, named: bool, errors: &mut Option<syn::Error>) -> Option<Shape> {
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
    let types: Vec<&Type> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) => Some(&*pt.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    if named {
        if types.len() != 1 {
            push(
                errors,
                syn::Error::new(
                    inputs_span(func),
                    format!(
                        "a handler of one event takes exactly one argument, the event data (any type implementing `serde::Deserialize`): `fn {}(data: MyData)`; found {} argument(s)",
                        sig.ident,
                        types.len()
                    ),
                ),
            );
            return None;
        }
        let ty = types[0];
        match ty {
            Type::Reference(r) => {
                push(
                    errors,
                    syn::Error::new(
                        r.span(),
                        "the event data is decoded into an owned value: take `T`, not `&T`",
                    ),
                );
                None
            }
            Type::ImplTrait(t) => {
                push(
                    errors,
                    syn::Error::new(
                        t.span(),
                        "the event data needs a concrete type implementing `serde::Deserialize`, not `impl Trait`",
                    ),
                );
                None
            }
            _ => Some(Shape::Typed(Box::new(ty.clone()))),
        }
    } else {
        if types.len() != 2 {
            push(
                errors,
                syn::Error::new(
                    inputs_span(func),
                    format!(
                        "a handler of every event takes two arguments, the event name and the data: `fn {}(event_name: &str, data: serde_json::Value)`; found {} argument(s). To handle one event, name it: `#[event_listener(\"txupdate\")]`",
                        sig.ident,
                        types.len()
                    ),
                ),
            );
            return None;
        }
        if !is_str_ref(types[0]) {
            push(
                errors,
                syn::Error::new(
                    types[0].span(),
                    "the first argument of a handler of every event is the event name: `event_name: &str`",
                ),
            );
            return None;
        }
        Some(Shape::Any(types[1].span()))
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
    let call = match (shape, is_async) {
        // The data type keeps its span (Deserialize errors land on it); the
        // rest of the call is spanned on the return type.
        (Shape::Typed(ty), true) => {
            quote_spanned!(ret_span=> #rt::prepare_async::<#ty, _, _>(__ck_event, #ident))
        }
        (Shape::Typed(ty), false) => {
            quote_spanned!(ret_span=> #rt::prepare_sync::<#ty, _, _>(__ck_event, #ident))
        }
        (Shape::Any(data_span), true) => {
            let data = quote_spanned!(*data_span=> __ck_data);
            quote_spanned!(ret_span=> #rt::prepare_any_async(__ck_event, |__ck_name, __ck_data| async move { #ident(&__ck_name, #data).await }))
        }
        (Shape::Any(data_span), false) => {
            let data = quote_spanned!(*data_span=> __ck_data);
            quote_spanned!(ret_span=> #rt::prepare_any_sync(__ck_event, |__ck_name, __ck_data| #ident(&__ck_name, #data)))
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
    quote! {
        #func

        const _: () = {
            fn __ck_prepare(
                __ck_event: &#rt::Event,
            ) -> ::core::result::Result<#rt::HandlerFuture, #rt::DecodeError> {
                #call
            }
            #krate::__private::inventory::submit! {
                #rt::Registration::new(
                    #event,
                    ::core::concat!(::core::module_path!(), "::", #name),
                    #timeout,
                    __ck_prepare,
                )
            }
        };
    }
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
        assert!(out.contains("prepare_async"), "{out}");
        assert!(
            out.contains(":: core :: option :: Option :: Some (\"txupdate\")"),
            "{out}"
        );
        assert!(out.contains("Some (50)"), "{out}");
        assert!(out.contains("inventory :: submit !"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
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
            out.contains("my :: ck :: __private :: events :: prepare_sync"),
            "{out}"
        );
        assert!(!out.contains(":: conflictkit"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_register_nothing() {
        let out = expand(
            quote!(42),
            quote!(
                fn f(a: u8, b: u8) {}
            ),
        );
        assert!(out.contains("fn f (a : u8 , b : u8) { }"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("submit"), "{out}");
    }
}
