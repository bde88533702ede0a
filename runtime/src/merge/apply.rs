//! The two passes of a merge: a read-only check that finds the first clash, then
//! an infallible apply that moves `b`'s values into `a`.
//!
//! Splitting the work this way is what gives "no change on error" without
//! cloning `a`: everything that can fail is found before anything is written.
//! Both passes visit only the parts of `a` that `b` reaches, so a merge costs
//! O(size of `b`) map look-ups, whatever the size of `a`.

use serde_json::{Map, Value, map::Entry};

use super::options::{ArrayMode, ClashMode, NullMode};
use super::{JsonType, KeyPath, MergeError, MergeOptions, PathSegment};

/// A clash found by [`check`], with its path collected innermost first while the
/// recursion unwinds (so the success path allocates nothing).
struct Clash {
    reversed_path: Vec<PathSegment>,
    existing: JsonType,
    incoming: JsonType,
}

/// Finds the first place where merging `b` into `a` would fail. `b` is the
/// value at the top level, never a deleted key, when `at_key` is false.
pub(super) fn check(a: &Value, b: &Value, options: MergeOptions) -> Result<(), MergeError> {
    if options.clash_mode() == ClashMode::Replace {
        return Ok(());
    }
    check_at(a, b, options.null_mode(), false).map_err(|clash| {
        let path: KeyPath = clash.reversed_path.into_iter().rev().collect();
        MergeError::new(path, clash.existing, clash.incoming)
    })
}

fn check_at(a: &Value, b: &Value, nulls: NullMode, at_key: bool) -> Result<(), Clash> {
    let Value::Object(a_map) = a else {
        // Scalars and null are replaced, arrays appended to or replaced: never a clash.
        return Ok(());
    };
    match b {
        Value::Object(b_map) => {
            for (key, b_value) in b_map {
                if let Some(a_value) = a_map.get(key) {
                    check_at(a_value, b_value, nulls, true).map_err(|mut clash| {
                        clash.reversed_path.push(PathSegment::Key(key.clone()));
                        clash
                    })?;
                }
            }
            Ok(())
        }
        Value::Null if at_key && nulls == NullMode::Delete => Ok(()),
        other => Err(Clash {
            reversed_path: Vec::new(),
            existing: JsonType::Object,
            incoming: JsonType::of(other),
        }),
    }
}

/// Merges `b` into `a`. Must only be called after [`check`] passed for the same
/// values and options: every clash is then resolved by replacing.
pub(super) fn apply(a: &mut Value, b: Value, options: MergeOptions) {
    match (a, b) {
        (Value::Object(a_map), Value::Object(b_map)) => merge_objects(a_map, b_map, options),
        (Value::Array(a_items), b) if options.array_mode() == ArrayMode::Append => match b {
            Value::Array(b_items) => a_items.extend(b_items),
            other => a_items.push(prepare(other, options)),
        },
        (a, b) => *a = prepare(b, options),
    }
}

fn merge_objects(a_map: &mut Map<String, Value>, b_map: Map<String, Value>, options: MergeOptions) {
    let delete = options.null_mode() == NullMode::Delete;
    for (key, b_value) in b_map {
        if delete && b_value.is_null() {
            a_map.remove(&key);
            continue;
        }
        match a_map.entry(key) {
            Entry::Occupied(slot) => apply(slot.into_mut(), b_value, options),
            Entry::Vacant(slot) => {
                slot.insert(prepare(b_value, options));
            }
        }
    }
}

/// A value of `b` about to land in the result as a whole: with
/// [`NullMode::Delete`] its objects lose their `null` members, as if it had been
/// merged into an empty object (RFC 7396). Arrays are taken verbatim.
fn prepare(mut value: Value, options: MergeOptions) -> Value {
    if options.null_mode() == NullMode::Delete {
        strip_nulls(&mut value);
    }
    value
}

fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, member| !member.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}
