/// The original's `app.Subsystem`, numbered from 1.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
enum Subsystem {
    Database = 1,
    StatusServer,
    Backend,
}
const _: () = {
    #[automatically_derived]
    impl ::conflictkit::__private::auto_number::AutoNumber for Subsystem {
        type Repr = i32;
        const ENUM_NAME: &'static str = "Subsystem";
        const VARIANTS: &'static [Self] = &[
            Self::Database,
            Self::StatusServer,
            Self::Backend,
        ];
        const VARIANT_NAMES: &'static [&'static str] = &[
            "Database",
            "StatusServer",
            "Backend",
        ];
        #[inline]
        fn value(&self) -> i32 {
            match *self {
                Self::Database => 1,
                Self::StatusServer => 2,
                Self::Backend => 3,
            }
        }
        #[allow(unreachable_patterns)]
        fn from_value(value: i32) -> ::core::option::Option<Self> {
            match value {
                1 => ::core::option::Option::Some(Self::Database),
                2 => ::core::option::Option::Some(Self::StatusServer),
                3 => ::core::option::Option::Some(Self::Backend),
                _ => ::core::option::Option::None,
            }
        }
        #[inline]
        fn name(&self) -> &'static str {
            match *self {
                Self::Database => "Database",
                Self::StatusServer => "StatusServer",
                Self::Backend => "Backend",
            }
        }
        fn from_name(name: &str) -> ::core::option::Option<Self> {
            match name {
                "Database" => ::core::option::Option::Some(Self::Database),
                "StatusServer" => ::core::option::Option::Some(Self::StatusServer),
                "Backend" => ::core::option::Option::Some(Self::Backend),
                _ => ::core::option::Option::None,
            }
        }
    }
    #[automatically_derived]
    impl ::core::convert::TryFrom<i32> for Subsystem {
        type Error = ::conflictkit::__private::auto_number::TryFromValueError<Self>;
        fn try_from(value: i32) -> ::core::result::Result<Self, Self::Error> {
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
    impl ::core::convert::From<Subsystem> for i32 {
        #[inline]
        fn from(variant: Subsystem) -> Self {
            <Subsystem as ::conflictkit::__private::auto_number::AutoNumber>::value(
                &variant,
            )
        }
    }
    #[automatically_derived]
    impl ::core::fmt::Display for Subsystem {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.pad(
                <Self as ::conflictkit::__private::auto_number::AutoNumber>::name(self),
            )
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for Subsystem {
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
        Subsystem, number
    }
    ::conflictkit::__private::auto_number::sea_orm_impls! {
        Subsystem
    }
};
