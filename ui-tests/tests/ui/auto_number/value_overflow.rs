use conflictkit::AutoNumber;

// 250..=259 does not fit in u8: spanned on the repr.
#[derive(AutoNumber)]
#[auto_number(repr = u8)]
enum TooMany {
    A = 250, B, C, D, E, F, G, H, I, J,
}

// 1..=128 overflows i8 (from `#[repr(i8)]`): spanned on the first value.
macro_rules! many {
    ($first:ident $($v:ident)*) => {
        #[derive(AutoNumber)]
        #[repr(i8)]
        enum Many { $first = 1, $($v,)* }
    };
}
many!(
    V0 V1 V2 V3 V4 V5 V6 V7 V8 V9 V10 V11 V12 V13 V14 V15 V16 V17 V18 V19 V20 V21 V22 V23 V24 V25
    V26 V27 V28 V29 V30 V31 V32 V33 V34 V35 V36 V37 V38 V39 V40 V41 V42 V43 V44 V45 V46 V47 V48 V49
    V50 V51 V52 V53 V54 V55 V56 V57 V58 V59 V60 V61 V62 V63 V64 V65 V66 V67 V68 V69 V70 V71 V72 V73
    V74 V75 V76 V77 V78 V79 V80 V81 V82 V83 V84 V85 V86 V87 V88 V89 V90 V91 V92 V93 V94 V95 V96 V97
    V98 V99 V100 V101 V102 V103 V104 V105 V106 V107 V108 V109 V110 V111 V112 V113 V114 V115 V116
    V117 V118 V119 V120 V121 V122 V123 V124 V125 V126 V127
);

// The first value itself out of range.
#[derive(AutoNumber)]
#[auto_number(repr = u16)]
enum Negative {
    A = -1,
}

fn main() {}
