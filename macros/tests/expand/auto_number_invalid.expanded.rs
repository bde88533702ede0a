#[derive(AutoNumber)]
enum Broken {
    NoNumber,
    WithFields(u8),
}
::core::compile_error! {
    "write the number of the first variant: `NoNumber = 1` (or `= 0`). AutoNumber values are the enum's discriminants, so `Broken::NoNumber as i32` and `Broken::NoNumber.value()` agree, and an implicit first discriminant would be 0 where the values start at 1"
}
::core::compile_error! {
    "`#[derive(AutoNumber)]` only supports unit variants (without fields), but `Broken::WithFields` has fields; remove them"
}
const _: () = {
    impl ::conflictkit::__private::auto_number::AutoNumber for Broken {
        type Repr = i32;
        const ENUM_NAME: &'static str = "Broken";
        const VARIANTS: &'static [Self] = &[];
        const VARIANT_NAMES: &'static [&'static str] = &[];
        fn value(&self) -> i32 {
            ::core::unreachable!()
        }
        fn from_value(_: i32) -> ::core::option::Option<Self> {
            ::core::unreachable!()
        }
        fn name(&self) -> &'static str {
            ::core::unreachable!()
        }
        fn from_name(_: &str) -> ::core::option::Option<Self> {
            ::core::unreachable!()
        }
    }
    impl ::core::convert::TryFrom<i32> for Broken {
        type Error = ::conflictkit::__private::auto_number::TryFromValueError<Self>;
        fn try_from(_: i32) -> ::core::result::Result<Self, Self::Error> {
            ::core::unreachable!()
        }
    }
    impl ::core::convert::From<Broken> for i32 {
        fn from(_: Broken) -> Self {
            ::core::unreachable!()
        }
    }
    impl ::core::fmt::Display for Broken {
        fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            ::core::unreachable!()
        }
    }
    impl ::core::str::FromStr for Broken {
        type Err = ::conflictkit::__private::auto_number::ParseNameError<Self>;
        fn from_str(_: &str) -> ::core::result::Result<Self, Self::Err> {
            ::core::unreachable!()
        }
    }
};
