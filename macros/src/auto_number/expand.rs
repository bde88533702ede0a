//! Code generation for `#[derive(AutoNumber)]`: the trait impl, the
//! conversions, and the feature-gated serde / sea-orm helper invocations.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};

use super::validate::Input;

/// An integer literal for `value` (a leading `-` token when negative), typed
/// by its context.
fn int(value: i128) -> TokenStream {
    let abs = Literal::u128_unsuffixed(value.unsigned_abs());
    if value < 0 {
        quote!(-#abs)
    } else {
        quote!(#abs)
    }
}

/// The full expansion for a valid input.
pub(crate) fn expand(input: &Input) -> TokenStream {
    let ident = &input.ident;
    let krate = &input.options.krate;
    let private = quote!(#krate::__private::auto_number);
    let repr = input.options.repr.ident();
    let enum_name = ident.to_string();

    let idents: Vec<_> = input.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<_> = input.variants.iter().map(|v| v.name.as_str()).collect();
    let values: Vec<_> = input.variants.iter().map(|v| int(v.value)).collect();

    let serde_mode = input.options.serde.ident();
    let require_serde = input
        .options
        .serde_span
        .map(|span| quote_spanned!(span=> #private::require_serde! {}));

    quote! {
        const _: () = {
            #[automatically_derived]
            impl #private::AutoNumber for #ident {
                type Repr = #repr;
                const ENUM_NAME: &'static str = #enum_name;
                const VARIANTS: &'static [Self] = &[#(Self::#idents),*];
                const VARIANT_NAMES: &'static [&'static str] = &[#(#names),*];

                #[inline]
                fn value(&self) -> #repr {
                    match *self {
                        #(Self::#idents => #values,)*
                    }
                }

                #[allow(unreachable_patterns)]
                fn from_value(value: #repr) -> ::core::option::Option<Self> {
                    match value {
                        #(#values => ::core::option::Option::Some(Self::#idents),)*
                        _ => ::core::option::Option::None,
                    }
                }

                #[inline]
                fn name(&self) -> &'static str {
                    match *self {
                        #(Self::#idents => #names,)*
                    }
                }

                fn from_name(name: &str) -> ::core::option::Option<Self> {
                    match name {
                        #(#names => ::core::option::Option::Some(Self::#idents),)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[automatically_derived]
            impl ::core::convert::TryFrom<#repr> for #ident {
                type Error = #private::TryFromValueError<Self>;

                fn try_from(value: #repr) -> ::core::result::Result<Self, Self::Error> {
                    match <Self as #private::AutoNumber>::from_value(value) {
                        ::core::option::Option::Some(variant) => ::core::result::Result::Ok(variant),
                        ::core::option::Option::None => {
                            ::core::result::Result::Err(#private::TryFromValueError::new(value))
                        }
                    }
                }
            }

            #[automatically_derived]
            impl ::core::convert::From<#ident> for #repr {
                #[inline]
                fn from(variant: #ident) -> Self {
                    <#ident as #private::AutoNumber>::value(&variant)
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Display for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.pad(<Self as #private::AutoNumber>::name(self))
                }
            }

            #[automatically_derived]
            impl ::core::str::FromStr for #ident {
                type Err = #private::ParseNameError<Self>;

                fn from_str(name: &str) -> ::core::result::Result<Self, Self::Err> {
                    match <Self as #private::AutoNumber>::from_name(name) {
                        ::core::option::Option::Some(variant) => ::core::result::Result::Ok(variant),
                        ::core::option::Option::None => {
                            ::core::result::Result::Err(#private::ParseNameError::new(name))
                        }
                    }
                }
            }

            #require_serde
            #private::serde_impls! { #ident, #serde_mode }
            #private::sea_orm_impls! { #ident }
        };
    }
}

/// Stub impls emitted next to the errors, so that uses of the enum elsewhere
/// do not add "trait not implemented" noise. Their bodies are never run: the
/// crate does not compile.
pub(crate) fn fallback(input: &Input) -> TokenStream {
    if input.has_generics {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let krate = &input.options.krate;
    let private = quote!(#krate::__private::auto_number);
    let repr = input.options.repr.ident();
    let enum_name = ident.to_string();
    quote! {
        const _: () = {
            impl #private::AutoNumber for #ident {
                type Repr = #repr;
                const ENUM_NAME: &'static str = #enum_name;
                const VARIANTS: &'static [Self] = &[];
                const VARIANT_NAMES: &'static [&'static str] = &[];
                fn value(&self) -> #repr { ::core::unreachable!() }
                fn from_value(_: #repr) -> ::core::option::Option<Self> { ::core::unreachable!() }
                fn name(&self) -> &'static str { ::core::unreachable!() }
                fn from_name(_: &str) -> ::core::option::Option<Self> { ::core::unreachable!() }
            }
            impl ::core::convert::TryFrom<#repr> for #ident {
                type Error = #private::TryFromValueError<Self>;
                fn try_from(_: #repr) -> ::core::result::Result<Self, Self::Error> { ::core::unreachable!() }
            }
            impl ::core::convert::From<#ident> for #repr {
                fn from(_: #ident) -> Self { ::core::unreachable!() }
            }
            impl ::core::fmt::Display for #ident {
                fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result { ::core::unreachable!() }
            }
            impl ::core::str::FromStr for #ident {
                type Err = #private::ParseNameError<Self>;
                fn from_str(_: &str) -> ::core::result::Result<Self, Self::Err> { ::core::unreachable!() }
            }
        };
    }
}
