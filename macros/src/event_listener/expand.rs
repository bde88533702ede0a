//! Code generation: the handler function stays as written, followed by a
//! `const _` block whose `__ck_prepare` produces the handler's parameters
//! from an event and calls it, registered with `inventory`. Nothing of the
//! listener is generated; it all lives in the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use super::args::Args;
use super::validate::Shape;

/// The function, unchanged, and its registration.
pub(super) fn registration(func: &ItemFn, args: &Args, shape: &Shape) -> TokenStream {
    let krate = args.krate();
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
    let timeout = match args.timeout_ms.get() {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let registration = if args.transactional.get().is_some() {
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
