#[derive(AutoNumber)]
#[auto_number(
    repr = i8,
    serde = "name",
    rename_all = "kebab-case",
    crate = "::my_app::ck"
)]
pub enum Temperature {
    Freezing = -1,
    BelowZero = 0,
    #[auto_number(rename = "mild")]
    r#Warm,
}
const _: () = {
    #[automatically_derived]
    impl ::my_app::ck::__private::auto_number::AutoNumber for Temperature {
        type Repr = i8;
        const ENUM_NAME: &'static str = "Temperature";
        const VARIANTS: &'static [Self] = &[
            Self::Freezing,
            Self::BelowZero,
            Self::r#Warm,
        ];
        const VARIANT_NAMES: &'static [&'static str] = &[
            "freezing",
            "below-zero",
            "mild",
        ];
        #[inline]
        fn value(&self) -> i8 {
            match *self {
                Self::Freezing => -1,
                Self::BelowZero => 0,
                Self::r#Warm => 1,
            }
        }
        #[allow(unreachable_patterns)]
        fn from_value(value: i8) -> ::core::option::Option<Self> {
            match value {
                -1 => ::core::option::Option::Some(Self::Freezing),
                0 => ::core::option::Option::Some(Self::BelowZero),
                1 => ::core::option::Option::Some(Self::r#Warm),
                _ => ::core::option::Option::None,
            }
        }
        #[inline]
        fn name(&self) -> &'static str {
            match *self {
                Self::Freezing => "freezing",
                Self::BelowZero => "below-zero",
                Self::r#Warm => "mild",
            }
        }
        fn from_name(name: &str) -> ::core::option::Option<Self> {
            match name {
                "freezing" => ::core::option::Option::Some(Self::Freezing),
                "below-zero" => ::core::option::Option::Some(Self::BelowZero),
                "mild" => ::core::option::Option::Some(Self::r#Warm),
                _ => ::core::option::Option::None,
            }
        }
    }
    #[automatically_derived]
    impl ::core::convert::TryFrom<i8> for Temperature {
        type Error = ::my_app::ck::__private::auto_number::TryFromValueError<Self>;
        fn try_from(value: i8) -> ::core::result::Result<Self, Self::Error> {
            match <Self as ::my_app::ck::__private::auto_number::AutoNumber>::from_value(
                value,
            ) {
                ::core::option::Option::Some(variant) => {
                    ::core::result::Result::Ok(variant)
                }
                ::core::option::Option::None => {
                    ::core::result::Result::Err(
                        ::my_app::ck::__private::auto_number::TryFromValueError::new(
                            value,
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::core::convert::From<Temperature> for i8 {
        #[inline]
        fn from(variant: Temperature) -> Self {
            <Temperature as ::my_app::ck::__private::auto_number::AutoNumber>::value(
                &variant,
            )
        }
    }
    #[automatically_derived]
    impl ::core::fmt::Display for Temperature {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.pad(<Self as ::my_app::ck::__private::auto_number::AutoNumber>::name(self))
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for Temperature {
        type Err = ::my_app::ck::__private::auto_number::ParseNameError<Self>;
        fn from_str(name: &str) -> ::core::result::Result<Self, Self::Err> {
            match <Self as ::my_app::ck::__private::auto_number::AutoNumber>::from_name(
                name,
            ) {
                ::core::option::Option::Some(variant) => {
                    ::core::result::Result::Ok(variant)
                }
                ::core::option::Option::None => {
                    ::core::result::Result::Err(
                        ::my_app::ck::__private::auto_number::ParseNameError::new(name),
                    )
                }
            }
        }
    }
    ::my_app::ck::__private::auto_number::require_serde! {}
    ::my_app::ck::__private::auto_number::serde_impls! {
        Temperature, name
    }
    ::my_app::ck::__private::auto_number::sea_orm_impls! {
        Temperature
    }
};
#[derive(AutoNumber)]
#[repr(u16)]
enum Empty {}
const _: () = {
    #[automatically_derived]
    impl ::conflictkit::__private::auto_number::AutoNumber for Empty {
        type Repr = u16;
        const ENUM_NAME: &'static str = "Empty";
        const VARIANTS: &'static [Self] = &[];
        const VARIANT_NAMES: &'static [&'static str] = &[];
        #[inline]
        fn value(&self) -> u16 {
            match *self {}
        }
        #[allow(unreachable_patterns)]
        fn from_value(value: u16) -> ::core::option::Option<Self> {
            match value {
                _ => ::core::option::Option::None,
            }
        }
        #[inline]
        fn name(&self) -> &'static str {
            match *self {}
        }
        fn from_name(name: &str) -> ::core::option::Option<Self> {
            match name {
                _ => ::core::option::Option::None,
            }
        }
    }
    #[automatically_derived]
    impl ::core::convert::TryFrom<u16> for Empty {
        type Error = ::conflictkit::__private::auto_number::TryFromValueError<Self>;
        fn try_from(value: u16) -> ::core::result::Result<Self, Self::Error> {
            match <Self as ::conflictkit::__private::auto_number::AutoNumber>::from_value(
                value,
            ) {
                ::core::option::Option::Some(variant) => {
                    ::core::result::Result::Ok(variant)
                }
                ::core::option::Option::None => {
                    ::core::result::Result::Err(
                        ::conflictkit::__private::auto_number::TryFromValueError::new(
                            value,
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::core::convert::From<Empty> for u16 {
        #[inline]
        fn from(variant: Empty) -> Self {
            <Empty as ::conflictkit::__private::auto_number::AutoNumber>::value(&variant)
        }
    }
    #[automatically_derived]
    impl ::core::fmt::Display for Empty {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.pad(
                <Self as ::conflictkit::__private::auto_number::AutoNumber>::name(self),
            )
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for Empty {
        type Err = ::conflictkit::__private::auto_number::ParseNameError<Self>;
        fn from_str(name: &str) -> ::core::result::Result<Self, Self::Err> {
            match <Self as ::conflictkit::__private::auto_number::AutoNumber>::from_name(
                name,
            ) {
                ::core::option::Option::Some(variant) => {
                    ::core::result::Result::Ok(variant)
                }
                ::core::option::Option::None => {
                    ::core::result::Result::Err(
                        ::conflictkit::__private::auto_number::ParseNameError::new(name),
                    )
                }
            }
        }
    }
    ::conflictkit::__private::auto_number::serde_impls! {
        Empty, number
    }
    ::conflictkit::__private::auto_number::sea_orm_impls! {
        Empty
    }
};
