//! `#[derive(AutoNumber)]`: values, every conversion both ways, iteration
//! order, error messages, options and serde.

use std::error::Error as _;

use conflictkit::AutoNumber;
use conflictkit::auto_number::{ParseNameError, TryFromValueError};

/// The original's `app.Subsystem`.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subsystem {
    Database = 1,
    StatusServer,
    Backend,
    Broadcast,
    IncomingTransactions,
    EventHandlerRegistry,
}

const SUBSYSTEM_NAMES: [&str; 6] = [
    "Database",
    "StatusServer",
    "Backend",
    "Broadcast",
    "IncomingTransactions",
    "EventHandlerRegistry",
];

#[derive(AutoNumber, Debug, PartialEq, Eq)]
#[auto_number(repr = i8)]
enum Temperature {
    Freezing = -2,
    Cold,
    Mild,
    Warm,
}

/// Not Copy, not Clone: the trait needs neither.
#[derive(AutoNumber, Debug, PartialEq, Eq)]
#[repr(u64)]
enum Edge {
    Penultimate = 18446744073709551614,
    Last,
}

#[derive(AutoNumber, Debug, PartialEq, Eq)]
enum Keywords {
    r#Type = 1,
    r#Match,
}

#[derive(AutoNumber, Debug)]
enum Empty {}

#[test]
fn values_are_one_based_in_declaration_order() {
    assert_eq!(Subsystem::Database.value(), 1);
    assert_eq!(Subsystem::Broadcast.value(), 4);
    assert_eq!(Subsystem::EventHandlerRegistry.value(), 6);
    let values: Vec<i32> = Subsystem::all().map(|s| s.value()).collect();
    assert_eq!(values, [1, 2, 3, 4, 5, 6]);
    // The repr is i32 unless asked otherwise.
    let _: i32 = Subsystem::Backend.value();
}

#[test]
fn first_value_and_repr() {
    let values: Vec<i8> = Temperature::all().map(|t| t.value()).collect();
    assert_eq!(values, [-2, -1, 0, 1]);
    assert_eq!(Temperature::from_value(0), Some(Temperature::Mild));
    assert_eq!(Temperature::from_value(2), None);
    assert_eq!(Temperature::from_value(-3), None);

    assert_eq!(Edge::Last.value(), u64::MAX);
    assert_eq!(Edge::Penultimate.value(), u64::MAX - 1);
    assert_eq!(Edge::try_from(u64::MAX), Ok(Edge::Last));
    assert_eq!(u64::from(Edge::Penultimate), u64::MAX - 1);
}

/// Every number written out, as a reader of stored integers may prefer.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Spelled {
    One = 1,
    Two = 2,
    Three = 3,
}

/// Names for another system: serde's case conventions, and one exception.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
#[auto_number(rename_all = "snake_case")]
enum Wire {
    StatusServer = 1,
    IncomingTransactions,
    #[auto_number(rename = "registry")]
    EventHandlerRegistry,
}

#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
#[auto_number(rename_all = "SCREAMING-KEBAB-CASE")]
enum Shout {
    StatusServer = 0,
    #[auto_number(rename = "quiet")]
    Backend,
}

#[test]
fn casts_agree_with_value() {
    for variant in Subsystem::all() {
        assert_eq!(variant as i32, variant.value());
    }
    for variant in Temperature::all() {
        let value = variant.value();
        assert_eq!(variant as i8, value);
    }
    for variant in Edge::all() {
        let value: u64 = variant.value();
        assert_eq!(variant as u64, value);
    }
    let spelled: Vec<(u8, u8)> = Spelled::all().map(|v| (v as u8, v.value())).collect();
    assert_eq!(spelled, [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(Wire::EventHandlerRegistry as i32, 3);
}

#[test]
fn rename_all_and_rename_set_the_names() {
    assert_eq!(
        Wire::VARIANT_NAMES,
        ["status_server", "incoming_transactions", "registry"]
    );
    assert_eq!(
        Wire::IncomingTransactions.to_string(),
        "incoming_transactions"
    );
    assert_eq!("registry".parse(), Ok(Wire::EventHandlerRegistry));
    // Only the new names parse.
    assert_eq!(Wire::from_name("EventHandlerRegistry"), None);
    assert_eq!(
        "StatusServer".parse::<Wire>().unwrap_err().to_string(),
        "`StatusServer` is not a variant of `Wire`; expected one of: status_server, \
         incoming_transactions, registry"
    );
    assert_eq!(Shout::VARIANT_NAMES, ["STATUS-SERVER", "quiet"]);
    assert_eq!(Shout::from_name("quiet"), Some(Shout::Backend));
    assert_eq!(Shout::Backend.value(), 1);
}

#[test]
fn every_conversion_round_trips() {
    for (i, variant) in Subsystem::all().enumerate() {
        let name = SUBSYSTEM_NAMES[i];
        let value = variant.value();
        assert_eq!(Subsystem::from_value(value), Some(variant));
        assert_eq!(Subsystem::try_from(value), Ok(variant));
        assert_eq!(i32::from(variant), value);
        let into: i32 = variant.into();
        assert_eq!(into, value);
        assert_eq!(variant.name(), name);
        assert_eq!(Subsystem::from_name(name), Some(variant));
        assert_eq!(variant.to_string(), name);
        assert_eq!(name.parse::<Subsystem>(), Ok(variant));
        assert_eq!(Subsystem::VARIANTS[i], variant);
        assert_eq!(Subsystem::VARIANT_NAMES[i], name);
    }
}

#[test]
fn raw_identifiers_are_named_without_r_hash() {
    assert_eq!(Keywords::r#Type.name(), "Type");
    assert_eq!("Match".parse(), Ok(Keywords::r#Match));
    assert_eq!(Keywords::VARIANT_NAMES, ["Type", "Match"]);
}

#[test]
fn iteration_follows_declaration_order() {
    assert_eq!(Subsystem::ENUM_NAME, "Subsystem");
    assert_eq!(Subsystem::VARIANTS.len(), 6);
    assert_eq!(Subsystem::VARIANT_NAMES, SUBSYSTEM_NAMES);
    let names: Vec<&str> = Subsystem::all().map(|s| s.name()).collect();
    assert_eq!(names, SUBSYSTEM_NAMES);
    let reversed: Vec<Subsystem> = Subsystem::all().rev().collect();
    assert_eq!(reversed.first(), Some(&Subsystem::EventHandlerRegistry));
    assert_eq!(reversed.last(), Some(&Subsystem::Database));
    assert_eq!(Subsystem::all().len(), 6);
    // Non-Copy enums iterate by value too.
    assert_eq!(
        Edge::all().collect::<Vec<_>>(),
        [Edge::Penultimate, Edge::Last]
    );
}

#[test]
fn display_honours_width_and_alignment() {
    assert_eq!(format!("[{:>8}]", Subsystem::Backend), "[ Backend]");
    assert_eq!(format!("[{:<8}]", Temperature::Cold), "[Cold    ]");
}

#[test]
fn try_from_error_names_the_enum_and_the_value() {
    let err: TryFromValueError<Subsystem> = Subsystem::try_from(7).unwrap_err();
    assert_eq!(err.value(), 7);
    assert_eq!(
        err.to_string(),
        "no variant of `Subsystem` has the value 7; use one of 1..=6"
    );
    assert_eq!(Subsystem::try_from(0).unwrap_err().value(), 0);
    assert_eq!(
        Temperature::try_from(-128).unwrap_err().to_string(),
        "no variant of `Temperature` has the value -128; use one of -2..=1"
    );
    assert!(err.source().is_none());
    // Usable as a boxed error (Send + Sync + 'static).
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err.clone());
    assert_eq!(boxed.to_string(), err.to_string());
    assert_eq!(
        format!("{err:?}"),
        r#"TryFromValueError { enum: "Subsystem", value: 7 }"#
    );
}

#[test]
fn from_str_error_names_the_enum_and_lists_valid_names() {
    let err: ParseNameError<Subsystem> = "database".parse::<Subsystem>().unwrap_err();
    assert_eq!(err.name(), "database");
    assert_eq!(
        err.to_string(),
        "`database` is not a variant of `Subsystem`; expected one of: Database, StatusServer, \
         Backend, Broadcast, IncomingTransactions, EventHandlerRegistry"
    );
    assert_eq!(Subsystem::from_name(""), None);
    assert_eq!(Subsystem::from_name("Database "), None);
}

#[test]
fn zero_variant_enums_work() {
    assert_eq!(Empty::VARIANTS.len(), 0);
    assert!(Empty::VARIANT_NAMES.is_empty());
    assert_eq!(Empty::all().count(), 0);
    assert!(Empty::from_value(1).is_none());
    assert!(Empty::from_name("Anything").is_none());
    assert_eq!(
        Empty::try_from(1).unwrap_err().to_string(),
        "no variant of `Empty` has the value 1; `Empty` has no variants"
    );
    assert_eq!(
        "X".parse::<Empty>().unwrap_err().to_string(),
        "`X` is not a variant of `Empty`; `Empty` has no variants"
    );
}

/// Generic code sees only the trait.
fn describe<E: AutoNumber>() -> Vec<String> {
    E::all()
        .map(|v| format!("{}:{}", v.value(), v.name()))
        .collect()
}

#[test]
fn generic_code_uses_the_trait() {
    assert_eq!(
        describe::<Temperature>(),
        ["-2:Freezing", "-1:Cold", "0:Mild", "1:Warm"]
    );
    assert_eq!(describe::<Subsystem>()[3], "4:Broadcast");
    assert!(describe::<Empty>().is_empty());
}

mod renamed {
    //! `crate = "..."` when conflictkit is reached through another path.
    pub(crate) use conflictkit as ck;

    #[derive(crate::auto_number::renamed::ck::AutoNumber, Debug, PartialEq)]
    #[auto_number(crate = "crate::auto_number::renamed::ck")]
    pub enum Color {
        Red = 10,
        Green,
    }
}

#[test]
fn crate_path_override() {
    assert_eq!(renamed::Color::Green.value(), 11);
    assert_eq!("Red".parse(), Ok(renamed::Color::Red));
}

mod serde_support {
    use conflictkit::AutoNumber;
    use serde::{Deserialize, Serialize};

    use super::Subsystem;

    #[derive(AutoNumber, Debug, PartialEq)]
    #[auto_number(serde = "name", repr = u8)]
    enum Level {
        Low = 1,
        High,
    }

    #[derive(AutoNumber, Debug, PartialEq)]
    #[auto_number(serde = "number")]
    enum Explicit {
        Zero = 0,
        One,
    }

    /// `serde = "none"`: no impls are generated, so this hand-written one
    /// does not conflict (the file would not compile otherwise).
    #[derive(AutoNumber, Debug, PartialEq)]
    #[auto_number(serde = "none")]
    enum Custom {
        A = 1,
    }

    impl Serialize for Custom {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str("custom")
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Event {
        subsystem: Subsystem,
        level: Level,
        previous: Option<Subsystem>,
    }

    #[test]
    fn numbers_by_default_both_ways() {
        assert_eq!(serde_json::to_string(&Subsystem::Broadcast).unwrap(), "4");
        assert_eq!(
            serde_json::from_str::<Subsystem>("2").unwrap(),
            Subsystem::StatusServer
        );
        assert_eq!(serde_json::to_string(&Explicit::Zero).unwrap(), "0");
        assert_eq!(
            serde_json::from_str::<Explicit>("1").unwrap(),
            Explicit::One
        );
        for s in Subsystem::all() {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, s.value().to_string());
            assert_eq!(serde_json::from_str::<Subsystem>(&json).unwrap(), s);
        }
    }

    #[test]
    fn unknown_numbers_and_wrong_types_are_errors() {
        let err = serde_json::from_str::<Subsystem>("7")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("no variant of `Subsystem` has the value 7; use one of 1..=6"),
            "{err}"
        );
        let err = serde_json::from_str::<Subsystem>(r#""Database""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected i32"), "{err}");
    }

    #[test]
    fn names_when_asked_both_ways() {
        assert_eq!(serde_json::to_string(&Level::High).unwrap(), r#""High""#);
        assert_eq!(
            serde_json::from_str::<Level>(r#""Low""#).unwrap(),
            Level::Low
        );
        // An escaped string is not borrowable; it must still work.
        assert_eq!(
            serde_json::from_str::<Level>(r#""H\u0069gh""#).unwrap(),
            Level::High
        );
        let err = serde_json::from_str::<Level>(r#""Medium""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown variant `Medium`, expected `Low` or `High`"),
            "{err}"
        );
        let err = serde_json::from_str::<Level>("1").unwrap_err().to_string();
        assert!(
            err.contains("expected the name of a variant of `Level`"),
            "{err}"
        );
        assert_eq!(Level::High.value(), 2u8);
    }

    #[derive(AutoNumber, Debug, PartialEq)]
    #[auto_number(serde = "name", rename_all = "kebab-case")]
    enum Renamed {
        StatusServer = 1,
        #[auto_number(rename = "db")]
        Database,
    }

    #[test]
    fn names_on_the_wire_follow_renames() {
        assert_eq!(
            serde_json::to_string(&Renamed::StatusServer).unwrap(),
            r#""status-server""#
        );
        assert_eq!(
            serde_json::from_str::<Renamed>(r#""db""#).unwrap(),
            Renamed::Database
        );
        assert!(serde_json::from_str::<Renamed>(r#""Database""#).is_err());
    }

    #[test]
    fn none_leaves_serde_to_the_user() {
        assert_eq!(serde_json::to_string(&Custom::A).unwrap(), r#""custom""#);
    }

    #[test]
    fn fields_of_derived_structs() {
        let event = Event {
            subsystem: Subsystem::Backend,
            level: Level::High,
            previous: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"subsystem": 3, "level": "High", "previous": null})
        );
        let back: Event = serde_json::from_value(
            serde_json::json!({"subsystem": 6, "level": "Low", "previous": 1}),
        )
        .unwrap();
        assert_eq!(
            back,
            Event {
                subsystem: Subsystem::EventHandlerRegistry,
                level: Level::Low,
                previous: Some(Subsystem::Database),
            }
        );
    }
}
