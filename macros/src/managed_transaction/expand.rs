//! Code generation: the user's function, whose body becomes a call to
//! `ConflictResolver::run` with a closure that replays it. No retry logic is
//! generated; it all lives in the runtime.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{AttrStyle, Attribute, ReturnType, Type};

use super::Flavor;
use super::args::Options;
use super::validate::{Arg, Checked};

/// The rewritten function.
pub(crate) fn function(checked: &Checked, options: &Options, flavor: Flavor) -> TokenStream {
    let krate = options.krate();
    let private = quote!(#krate::__private);
    let item = &checked.function;
    let attrs = item.attrs.iter().map(as_outer);
    let vis = &item.vis;
    let sig = &item.sig;
    let (asyncness, fn_token, ident, generics) =
        (&sig.asyncness, &sig.fn_token, &sig.ident, &sig.generics);
    let where_clause = &generics.where_clause;
    let output = &sig.output;

    let resolver_param = resolver_param_name(checked);
    let receiver = checked.receiver.iter();
    let resolver_input = options.resolver.get().is_none().then(|| {
        if has_precise_capture(output) {
            // `use<…>` cannot name the anonymous type parameter of
            // `impl Caller`: a plain resolver parameter then
            quote!(#resolver_param: &#private::ConflictResolver)
        } else {
            quote!(#resolver_param: &(impl #private::Caller + ?::core::marker::Sized))
        }
    });
    let arg_inputs = checked.args.iter().map(
        |Arg {
             attrs, ident, ty, ..
         }| quote!(#(#attrs)* #ident: #ty),
    );
    let inputs = receiver
        .map(ToTokens::to_token_stream)
        .chain(resolver_input)
        .chain(arg_inputs);

    let (resolver_binding, resolver_ref) = match options.resolver.get() {
        Some(expr) => (
            quote_spanned! {expr.span()=>
                let __ck_resolver: &#private::ConflictResolver = &(#expr);
            },
            quote!(__ck_resolver),
        ),
        None => (TokenStream::new(), resolver_param.to_token_stream()),
    };

    let call_options = call_options(checked, options, flavor, &private);
    let txn_pat = &checked.txn.pat;
    let txn_ty = &checked.txn.ty;
    // An idempotent call uses its arguments before the body (the key, the
    // fingerprint): one the body does not read is no unused variable.
    let used_before = options
        .idempotency_key
        .get()
        .map(|_| quote!(#[allow(unused_variables)]));
    let replays = checked.args.iter().map(
        |Arg {
             ident, pat, span, ..
         }| {
            quote_spanned! {*span=>
                #used_before
                let #pat = #private::ReplayArg::replay(&#ident);
            }
        },
    );
    let fake_return = fake_return(output);
    let block = &item.block;

    let (key_binding, run, key_arg) = match idempotency(checked, options, &private) {
        Some((binding, run)) => (binding, run, quote!(__ck_idempotency_key,)),
        None if options.batch.get().is_some() => (
            TokenStream::new(),
            format_ident!("run_managed_batched"),
            TokenStream::new(),
        ),
        None => (
            TokenStream::new(),
            format_ident!("run_managed"),
            TokenStream::new(),
        ),
    };
    let call = at_return_type(
        quote! {
            #private::#run(
                #resolver_ref,
                #call_options,
                #key_arg
                move |#txn_pat: &#txn_ty| {
                    #(#replays)*
                    ::std::boxed::Box::pin(async move {
                        #fake_return
                        #block
                    })
                },
            )
            .await
        },
        output,
    );
    quote! {
        #(#attrs)*
        #vis #asyncness #fn_token #ident #generics (#(#inputs),*) #output #where_clause {
            #resolver_binding
            #key_binding
            #call
        }
    }
}

/// With `idempotency_key`: the binding of `__ck_idempotency_key` (the key
/// expression evaluated once, and the fingerprint: `fingerprint = …` or the
/// arguments, each checked on its own type, made while the arguments are
/// still the function's) and the runtime function to call.
fn idempotency(
    checked: &Checked,
    options: &Options,
    private: &TokenStream,
) -> Option<(TokenStream, Ident)> {
    let key = options.idempotency_key.get()?;
    let made = match options.fingerprint.get() {
        Some(fingerprint) => quote_spanned! {fingerprint.span()=>
            #private::idempotency_key(&(#key), &(#fingerprint))
        },
        None => {
            let args = checked.args.iter().map(|Arg { ident, span, .. }| {
                let mut ident = ident.clone();
                ident.set_span(ident.span().located_at(*span));
                quote_spanned! {*span=> .arg(&#ident)}
            });
            quote_spanned! {key.span()=>
                #private::ArgsFingerprint::new() #(#args)* .key(&(#key))
            }
        }
    };
    let run = if options.store_errors.get().is_some() {
        format_ident!("run_idempotent_call_storing_errors")
    } else {
        format_ident!("run_idempotent_call")
    };
    let binding = quote! {
        let __ck_idempotency_key = #made;
    };
    Some((binding, run))
}

/// The call into the runtime located on the return type (hygiene unchanged;
/// only its top-level tokens move, so the arguments and the user's block keep
/// their spans): an error type that is not a `TransactionError` is then
/// reported once, there, rather than on the attribute.
fn at_return_type(tokens: TokenStream, output: &ReturnType) -> TokenStream {
    let ReturnType::Type(_, ty) = output else {
        return tokens;
    };
    let at = ty.span();
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(token.span().located_at(at));
            token
        })
        .collect()
}

/// `resolver`, or `__ck_resolver` when the function already uses that name.
fn resolver_param_name(checked: &Checked) -> Ident {
    let taken = checked.args.iter().any(|a| a.ident == "resolver")
        || matches!(&checked.txn.pat, syn::Pat::Ident(p) if p.ident == "resolver");
    if taken {
        format_ident!("__ck_resolver")
    } else {
        format_ident!("resolver")
    }
}

/// `CallOptions::new(label).retries(..)…`: only what the attribute sets.
fn call_options(
    checked: &Checked,
    options: &Options,
    flavor: Flavor,
    private: &TokenStream,
) -> TokenStream {
    let fn_name = checked.function.sig.ident.unraw().to_string();
    let label = match (options.label.get(), &checked.receiver) {
        (Some(label), _) => label.to_token_stream(),
        (None, Some(_)) => quote! {
            ::std::format!("{}::{}", ::core::any::type_name::<Self>(), #fn_name)
        },
        (None, None) => quote! {
            ::core::concat!(::core::module_path!(), "::", #fn_name)
        },
    };
    let mut calls = quote!(#private::CallOptions::new(#label));
    if let Some(&(n, span)) = options.retries.get() {
        let mut n = Literal::u32_unsuffixed(n);
        n.set_span(span);
        calls.extend(quote!(.retries(#n)));
    }
    if let Some(&(isolation, span)) = options.isolation.get() {
        let variant = Ident::new(isolation.variant(), span);
        calls.extend(quote!(.isolation(#private::Isolation::#variant)));
    }
    if options.read_only.get().is_some() {
        calls.extend(quote!(.read_only(true)));
    }
    if options.deferrable.get().is_some() {
        calls.extend(quote!(.deferrable(true)));
    }
    if options.durable.get().is_some() {
        calls.extend(quote!(.durable(true)));
    }
    if let Some(&(millis, span)) = options.timeout.get() {
        let millis = Literal::u64_unsuffixed(millis);
        calls.extend(quote_spanned! {span=>
            .timeout_checked_by_macro(::core::time::Duration::from_millis(#millis))
        });
    }
    if let Some(&(mode, span)) = options.sqlite_mode.get() {
        let variant = Ident::new(mode.variant(), span);
        calls.extend(quote!(.sqlite_mode(#private::SqliteMode::#variant)));
    }
    if let Some(&(contention, span)) = options.contention.get() {
        let variant = Ident::new(contention.variant(), span);
        calls.extend(quote!(.contention(#private::Contention::#variant)));
    }
    if let Some(key) = options.key.get() {
        calls.extend(quote_spanned! {key.span()=> .key(&(#key))});
    }
    if let Some(&(max, span)) = options.batch.get() {
        let mut max = Literal::usize_unsuffixed(max);
        max.set_span(span);
        calls.extend(quote!(.batch(#max)));
    }
    if flavor == Flavor::NonRetryable {
        calls.extend(quote!(.non_retryable()));
    }
    calls
}

/// `if false { let __ck_return: Ret = loop {}; return __ck_return; }`: fixes
/// the async block's output to the declared return type, so `?` and
/// `Ok(..)` infer as in the original function, and type errors point at the
/// user's return type. `impl Trait` is erased to `_`.
fn fake_return(output: &ReturnType) -> TokenStream {
    let ReturnType::Type(_, ty) = output else {
        return TokenStream::new();
    };
    let mut ty = (**ty).clone();
    ImplTraitEraser.visit_type_mut(&mut ty);
    let span = output.span();
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __ck_return: #ty = loop {};
            return __ck_return;
        }
    }
}

/// Whether the return type uses precise capturing (`impl Trait + use<…>`).
fn has_precise_capture(output: &ReturnType) -> bool {
    // (`visit-mut` on a copy: the crate builds syn without `visit`)
    struct Finder(bool);
    impl VisitMut for Finder {
        fn visit_type_param_bound_mut(&mut self, bound: &mut syn::TypeParamBound) {
            if matches!(bound, syn::TypeParamBound::PreciseCapture(_)) {
                self.0 = true;
            }
            syn::visit_mut::visit_type_param_bound_mut(self, bound);
        }
    }
    let mut finder = Finder(false);
    if let ReturnType::Type(_, ty) = output {
        finder.visit_type_mut(&mut (**ty).clone());
    }
    finder.0
}

struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(i) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](i.impl_token.span),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

/// Inner attributes of the body (`#![allow(..)]`) become outer attributes of
/// the function, as the body moves into a closure.
fn as_outer(attr: &Attribute) -> Attribute {
    let mut attr = attr.clone();
    attr.style = AttrStyle::Outer;
    attr
}
