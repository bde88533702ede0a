//! `conflictkit::merge`: the original `merge_dict` rules (SEED.md §5), RFC 7396,
//! the no-change-on-error guarantee, and property tests against reference
//! implementations of the original and of RFC 7396.

use conflictkit::merge::{
    JsonType, KeyPath, MergeError, MergeOptions, PathSegment, merge_dict, merge_into, merge_with,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn scalars() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-7),
        json!(2.5),
        json!(""),
        json!("s"),
    ]
}

fn every_kind() -> Vec<Value> {
    let mut values = scalars();
    values.extend([
        json!([]),
        json!([1, "x"]),
        json!({}),
        json!({"k": [1], "n": null}),
    ]);
    values
}

// ---- the original's rules -------------------------------------------------------

#[test]
fn scalar_or_null_in_a_is_replaced_by_any_b() {
    for a in scalars() {
        for b in every_kind() {
            assert_eq!(
                merge_dict(a.clone(), b.clone()).unwrap(),
                b,
                "merging {b} into {a}"
            );
        }
    }
}

#[test]
fn array_in_a_is_extended_by_an_array_b() {
    assert_eq!(
        merge_dict(json!([1, 2]), json!([2, 3])).unwrap(),
        json!([1, 2, 2, 3])
    );
    assert_eq!(merge_dict(json!([]), json!([])).unwrap(), json!([]));
    // Never deduplicated, never looked into.
    assert_eq!(
        merge_dict(json!([{"a": 1}]), json!([{"a": 1}])).unwrap(),
        json!([{"a": 1}, {"a": 1}])
    );
}

#[test]
fn array_in_a_gets_any_other_b_pushed() {
    for b in every_kind().into_iter().filter(|b| !b.is_array()) {
        assert_eq!(
            merge_dict(json!([1]), b.clone()).unwrap(),
            json!([1, b]),
            "pushing {b}"
        );
    }
}

#[test]
fn objects_merge_key_by_key_recursively() {
    let a = json!({
        "only_a": 1,
        "both_scalar": "old",
        "both_array": [1],
        "nested": {"keep": true, "change": 1, "deeper": {"x": [0]}},
    });
    let b = json!({
        "only_b": {"new": null},
        "both_scalar": {"now": "an object"},
        "both_array": [2],
        "nested": {"change": 2, "deeper": {"x": 1, "y": 2}},
    });
    assert_eq!(
        merge_dict(a, b).unwrap(),
        json!({
            "only_a": 1,
            "only_b": {"new": null},
            "both_scalar": {"now": "an object"},
            "both_array": [1, 2],
            "nested": {"keep": true, "change": 2, "deeper": {"x": [0, 1], "y": 2}},
        })
    );
}

#[test]
fn object_in_a_accepts_only_an_object_b() {
    for b in every_kind().into_iter().filter(|b| !b.is_object()) {
        let err = merge_dict(json!({"a": 1}), b.clone()).unwrap_err();
        assert!(err.path().is_root());
        assert_eq!(err.existing(), JsonType::Object);
        assert_eq!(err.incoming(), JsonType::of(&b));
    }
}

#[test]
fn null_b_into_an_object_is_an_error_as_in_the_original() {
    let err = merge_dict(json!({"db": {"echo": false}}), json!({"db": null})).unwrap_err();
    assert_eq!(err.path().to_string(), "db");
    assert_eq!(
        (err.existing(), err.incoming()),
        (JsonType::Object, JsonType::Null)
    );
}

#[test]
fn error_names_the_nested_key_path_and_both_types() {
    let a = json!({"events": {"http": {"url": {"host": "127.0.0.1"}}}});
    let b = json!({"events": {"http": {"url": "http://127.0.0.1:8080"}}});
    let err = merge_dict(a, b).unwrap_err();
    assert_eq!(
        err.path().segments(),
        [
            PathSegment::from("events"),
            PathSegment::from("http"),
            PathSegment::from("url")
        ]
    );
    assert_eq!(
        err.to_string(),
        "cannot merge a string into an object at `events.http.url`: an object only merges with \
         another object (make the new value an object, or use ClashMode::Replace to let it \
         replace the object)"
    );
}

#[test]
fn error_message_at_the_top_level_and_for_every_type() {
    let cases = [
        (json!(null), "null"),
        (json!(true), "a boolean"),
        (json!(1), "a number"),
        (json!("x"), "a string"),
        (json!([]), "an array"),
    ];
    for (b, prose) in cases {
        let message = merge_dict(json!({}), b).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "cannot merge {prose} into an object at the top level:"
            )),
            "{message}"
        );
    }
}

#[test]
fn keys_that_are_not_plain_words_are_quoted_in_the_path() {
    let a = json!({"a.b": {"": {"c d": {}}}});
    let b = json!({"a.b": {"": {"c d": 1}}});
    let err = merge_dict(a, b).unwrap_err();
    assert_eq!(err.path().to_string(), r#"["a.b"][""]["c d"]"#);
}

#[test]
fn merge_error_is_a_std_error_without_source() {
    let err: Box<dyn std::error::Error + Send + Sync> =
        Box::new(merge_dict(json!({}), json!(1)).unwrap_err());
    assert!(err.source().is_none());
    assert!(err.to_string().contains("a number into an object"));
}

#[test]
fn key_path_shows_array_positions() {
    let mut path = KeyPath::root();
    path.push_key("servers");
    path.push_index(3);
    path.push_key("port");
    assert_eq!(path.to_string(), "servers[3].port");
    assert_eq!(path.describe(), "`servers[3].port`");
}

// ---- no change on error ---------------------------------------------------------

#[test]
fn merge_into_leaves_a_unchanged_on_error() {
    // Keys are visited in order; everything before `z_clash` would be merged by a
    // naive implementation before the clash is found (the original's bug).
    let mut a = json!({
        "a_scalar": 1,
        "b_array": [1],
        "c_nested": {"x": 1},
        "z_clash": {"deep": {"object": {}}},
    });
    let before = a.clone();
    let b = json!({
        "a_scalar": 2,
        "b_array": [2],
        "c_nested": {"x": 2, "y": 3},
        "new_key": true,
        "z_clash": {"deep": {"object": [1]}},
    });
    let err = merge_into(&mut a, b).unwrap_err();
    assert_eq!(err.path().to_string(), "z_clash.deep.object");
    assert_eq!(a, before);
}

#[test]
fn merge_with_leaves_a_unchanged_on_error_and_merge_patch_cannot_fail() {
    let b = json!({"a": [2], "b": {"x": null}, "c": {"d": 5}});
    let mut a = json!({"a": [1], "b": null, "c": {"d": {}}});
    let before = a.clone();
    let err = merge_with(&mut a, b.clone(), MergeOptions::ORIGINAL).unwrap_err();
    assert_eq!(err.path().to_string(), "c.d");
    assert_eq!(a, before);

    merge_with(&mut a, b, MergeOptions::MERGE_PATCH).unwrap();
    assert_eq!(a, json!({"a": [2], "b": {}, "c": {"d": 5}}));
}

// ---- RFC 7396 ---------------------------------------------------------------------

#[test]
fn merge_patch_replaces_arrays_with_anything_but_null() {
    for b in every_kind().into_iter().filter(|b| !b.is_null()) {
        let mut a = json!({"list": [1, 2]});
        merge_with(
            &mut a,
            json!({"list": b.clone()}),
            MergeOptions::MERGE_PATCH,
        )
        .unwrap();
        // An object lands as if merged into `{}`: without its null members.
        let expected = match b {
            Value::Object(map) => {
                Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
            }
            other => other,
        };
        assert_eq!(a, json!({"list": expected}));
    }
    // Top level too.
    let mut a = json!([1]);
    merge_with(&mut a, json!([2]), MergeOptions::MERGE_PATCH).unwrap();
    assert_eq!(a, json!([2]));
}

#[test]
fn merge_patch_nulls_remove_keys_and_add_none() {
    let mut a = json!({"scalar": 1, "array": [1], "object": {"x": 1}, "kept": 0});
    let b = json!({"scalar": null, "array": null, "object": null, "absent": null});
    merge_with(&mut a, b, MergeOptions::MERGE_PATCH).unwrap();
    assert_eq!(a, json!({"kept": 0}));
}

#[test]
fn merge_patch_strips_nulls_from_objects_that_land_whole() {
    let mut a = json!({"scalar": 1, "list": []});
    let b = json!({
        "scalar": {"x": null, "y": {"z": null, "w": 1}, "arr": [null, {"n": null}]},
        "new": {"gone": null},
        "list": {"replaced": null, "kept": 2},
    });
    merge_with(&mut a, b, MergeOptions::MERGE_PATCH).unwrap();
    // Objects lose their null members at every depth; arrays are values, kept verbatim.
    assert_eq!(
        a,
        json!({
            "scalar": {"y": {"w": 1}, "arr": [null, {"n": null}]},
            "new": {},
            "list": {"kept": 2},
        })
    );
}

#[test]
fn merge_patch_top_level_null_replaces_everything() {
    // A top-level null is not a key: it is the new document.
    for a in [json!([1]), json!("s"), json!({"k": 1})] {
        let mut a = a;
        merge_with(&mut a, Value::Null, MergeOptions::MERGE_PATCH).unwrap();
        assert_eq!(a, Value::Null);
    }
}

#[test]
fn null_mode_replace_is_the_default_and_stores_null() {
    let mut a = json!({"a": 1, "list": [1]});
    merge_into(&mut a, json!({"a": null, "list": null, "new": null})).unwrap();
    assert_eq!(a, json!({"a": null, "list": [1, null], "new": null}));
}

#[test]
fn merge_patch_lets_b_replace_an_object() {
    for b in every_kind()
        .into_iter()
        .filter(|b| !b.is_object() && !b.is_null())
    {
        let mut a = json!({"db": {"url": "x"}, "other": 1});
        merge_with(&mut a, json!({"db": b.clone()}), MergeOptions::MERGE_PATCH).unwrap();
        assert_eq!(a, json!({"db": b, "other": 1}));
        let mut a = json!({"top": "level"});
        merge_with(&mut a, b.clone(), MergeOptions::MERGE_PATCH).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn original_is_the_default() {
    assert_eq!(MergeOptions::default(), MergeOptions::ORIGINAL);
    assert_eq!(MergeOptions::new(), MergeOptions::ORIGINAL);
    assert_ne!(MergeOptions::ORIGINAL, MergeOptions::MERGE_PATCH);
}

#[test]
fn merge_patch_passes_the_rfc_7396_appendix_a_examples() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (target, patch, expected) in cases {
        let mut doc = target.clone();
        merge_with(&mut doc, patch.clone(), MergeOptions::MERGE_PATCH).unwrap();
        assert_eq!(doc, expected, "{target} patched with {patch}");
    }
}

// ---- property tests ---------------------------------------------------------------

/// Reference RFC 7396 MergePatch, transcribed from the pseudocode in section 2.
fn rfc7396(target: Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut target = match target {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            let current = target.remove(name).unwrap_or(Value::Null);
            target.insert(name.clone(), rfc7396(current, value));
        }
    }
    Value::Object(target)
}

/// Reference of the Python original, transcribed from SEED.md §5 (it mutates as it
/// goes, so on error its partial result is discarded).
fn original(a: Value, b: Value) -> Result<Value, ()> {
    match a {
        Value::Array(mut items) => {
            match b {
                Value::Array(more) => items.extend(more),
                other => items.push(other),
            }
            Ok(Value::Array(items))
        }
        Value::Object(mut map) => {
            let Value::Object(b) = b else { return Err(()) };
            for (key, value) in b {
                let merged = match map.remove(&key) {
                    Some(existing) => original(existing, value)?,
                    None => value,
                };
                map.insert(key, merged);
            }
            Ok(Value::Object(map))
        }
        _ => Ok(b),
    }
}

/// Random documents over a small key alphabet so that `a` and `b` overlap.
fn document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", document(), 0..5)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn options() -> impl Strategy<Value = MergeOptions> {
    prop_oneof![
        Just(MergeOptions::ORIGINAL),
        Just(MergeOptions::MERGE_PATCH)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merging_an_empty_object_into_an_object_is_identity(a in object(), options in options()) {
        let mut merged = a.clone();
        merge_with(&mut merged, json!({}), options).unwrap();
        prop_assert_eq!(merged, a);
    }

    #[test]
    fn merging_an_object_into_an_empty_object_is_identity(b in object()) {
        prop_assert_eq!(merge_dict(json!({}), b.clone()).unwrap(), b);
    }

    #[test]
    fn merge_patch_options_equal_rfc_7396(a in document(), b in document()) {
        let expected = rfc7396(a.clone(), &b);
        // json-patch's implementation agrees with the reference (checks the reference).
        let mut theirs = a.clone();
        json_patch::merge(&mut theirs, &b);
        prop_assert_eq!(&theirs, &expected);
        let mut merged = a;
        merge_with(&mut merged, b, MergeOptions::MERGE_PATCH).unwrap();
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn default_options_equal_the_original(a in document(), b in document()) {
        match (merge_dict(a.clone(), b.clone()), original(a, b)) {
            (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs),
            (Err(_), Err(())) => {}
            (ours, theirs) => prop_assert!(false, "ours {:?}, original {:?}", ours, theirs),
        }
    }

    #[test]
    fn never_panics_and_never_changes_a_on_error(
        a in document(),
        b in document(),
        options in options(),
    ) {
        let mut merged = a.clone();
        let result: Result<(), MergeError> = merge_with(&mut merged, b, options);
        if result.is_err() {
            prop_assert_eq!(options, MergeOptions::ORIGINAL);
            prop_assert_eq!(merged, a);
        }
    }
}
