//! Scenario 4, **merge**: `conflictkit::merge::merge_dict` (the original's
//! rules) and `merge_with(…, MergeOptions::MERGE_PATCH)` against
//! `json_patch::merge` on generated documents of 1, 10 and 100 MB (a target of
//! wallet accounts and a patch touching every other account plus 10 % new
//! ones, about a quarter of the target's size; the generator is
//! `merge_docs.rs`).
//!
//! Every way starts from a borrowed patch, as `json_patch::merge` does: the
//! conflictkit ways clone it inside the timing (they take it by value), so
//! each way pays for copying the patch once. Generation, the copy of the
//! target each way consumes and the drops of the results are outside the
//! timing. Ways are interleaved
//! within each repeat. Before timing, the RFC 7396 results of conflictkit and
//! json-patch are compared (they must be equal), and the original-rules result
//! is checked to hold every account of both documents.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use conflictkit::merge::{MergeOptions, merge_dict, merge_with};
use serde_json::{Value, json};

use crate::Config;
use crate::merge_docs;
use crate::report::{JsonSink, Table, median, num};

/// The ways measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// `merge_dict(a, b.clone())`: the original's rules, the patch copied in.
    MergeDict,
    /// `merge_with(&mut a, b.clone(), MergeOptions::MERGE_PATCH)`.
    MergePatch,
    /// `json_patch::merge(&mut a, &b)` (RFC 7396, `b` borrowed and copied).
    JsonPatch,
    /// `a.clone()`: the yardstick of one deep copy of the target.
    CloneTarget,
}

impl Way {
    const ALL: [Way; 4] = [
        Way::MergeDict,
        Way::MergePatch,
        Way::JsonPatch,
        Way::CloneTarget,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::MergeDict => "conflictkit merge_dict (original rules)",
            Way::MergePatch => "conflictkit merge_with MERGE_PATCH",
            Way::JsonPatch => "json_patch::merge",
            Way::CloneTarget => "target.clone() (yardstick)",
        }
    }
}

pub(crate) fn run(cfg: &Config, sink: &mut JsonSink) -> Result<(), Box<dyn std::error::Error>> {
    let mut table = Table::new(
        "merge · target of accounts + patch touching half of them and adding 10 % · median of repeats",
        vec![
            "target",
            "way",
            "runs",
            "median ms",
            "min ms",
            "MB/s (target)",
            "÷ json_patch",
            "check",
        ],
    );
    for &mb in &cfg.sizes_mb {
        let generated = Instant::now();
        let (target, patch) = merge_docs::documents(mb << 20);
        let target_bytes = serde_json::to_vec(&target)?.len();
        let patch_bytes = serde_json::to_vec(&patch)?.len();
        eprintln!(
            "  merge {mb} MB: target {:.1} MB, patch {:.1} MB of JSON, generated in {:.1} s",
            target_bytes as f64 / 1048576.0,
            patch_bytes as f64 / 1048576.0,
            generated.elapsed().as_secs_f64()
        );
        let checks = check(&target, &patch)?;
        // more repeats for the small sizes, whose runs are short
        let reps = cfg.repeat * (100 / mb).clamp(1, 5);
        let mut times: BTreeMap<Way, Vec<Duration>> = BTreeMap::new();
        for rep in 0..reps {
            let mut order = Way::ALL.to_vec();
            let shift = rep % order.len();
            order.rotate_left(shift);
            for way in order {
                let t = time_once(way, &target, &patch)?;
                times.entry(way).or_default().push(t);
            }
        }
        let ms = |way: Way| -> Vec<f64> {
            times[&way]
                .iter()
                .map(|d| d.as_secs_f64() * 1000.0)
                .collect()
        };
        let json_patch_ms = median(ms(Way::JsonPatch));
        for way in Way::ALL {
            let v = ms(way);
            let med = median(v.clone());
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let mbps = target_bytes as f64 / 1048576.0 / (med / 1000.0);
            let ratio = med / json_patch_ms;
            let check = match way {
                Way::MergeDict => checks.merge_dict,
                Way::MergePatch | Way::JsonPatch => checks.merge_patch_equal,
                Way::CloneTarget => "–",
            };
            eprintln!(
                "  merge {mb} MB {:<40} median {med:>9.2} ms min {min:>9.2} ms {mbps:>7.0} MB/s",
                way.name()
            );
            table.row(vec![
                format!("{mb} MB"),
                way.name().to_owned(),
                v.len().to_string(),
                num(med, 2),
                num(min, 2),
                num(mbps, 0),
                num(ratio, 2),
                check.to_owned(),
            ]);
            sink.write(json!({
                "scenario": "merge", "kind": "median", "size_mb": mb, "target_bytes": target_bytes,
                "patch_bytes": patch_bytes, "way": way.name(), "runs": v.len(), "median_ms": med,
                "min_ms": min, "all_ms": v, "mb_per_s": mbps, "ratio_vs_json_patch": ratio,
                "check": check,
            }))?;
        }
        if checks.merge_patch_equal != "equal" || checks.merge_dict != "all accounts" {
            table.print();
            return Err(format!(
                "merge {mb} MB: result check failed (MERGE_PATCH vs json_patch: {}, merge_dict: {})",
                checks.merge_patch_equal, checks.merge_dict
            )
            .into());
        }
    }
    table.print();
    Ok(())
}

/// Times one call of `way` on fresh copies of the documents.
fn time_once(
    way: Way,
    target: &Value,
    patch: &Value,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let elapsed = match way {
        Way::MergeDict => {
            let a = target.clone();
            let t0 = Instant::now();
            let out = merge_dict(a, black_box(patch).clone())?;
            let t = t0.elapsed();
            drop(black_box(out));
            t
        }
        Way::MergePatch => {
            let mut a = target.clone();
            let t0 = Instant::now();
            merge_with(&mut a, black_box(patch).clone(), MergeOptions::MERGE_PATCH)?;
            let t = t0.elapsed();
            drop(black_box(a));
            t
        }
        Way::JsonPatch => {
            let mut a = target.clone();
            let t0 = Instant::now();
            json_patch::merge(&mut a, black_box(patch));
            let t = t0.elapsed();
            drop(black_box(a));
            t
        }
        Way::CloneTarget => {
            let t0 = Instant::now();
            let copy = black_box(target).clone();
            let t = t0.elapsed();
            drop(black_box(copy));
            t
        }
    };
    Ok(elapsed)
}

/// The outcome of the result checks, as shown in the table.
struct Checks {
    merge_patch_equal: &'static str,
    merge_dict: &'static str,
}

/// Compares conflictkit's RFC 7396 result with json-patch's, and checks that
/// the original-rules result holds every account of the target and the patch
/// with the patched tags appended.
fn check(target: &Value, patch: &Value) -> Result<Checks, Box<dyn std::error::Error>> {
    let mut ours = target.clone();
    merge_with(&mut ours, patch.clone(), MergeOptions::MERGE_PATCH)?;
    let mut theirs = target.clone();
    json_patch::merge(&mut theirs, patch);
    let merge_patch_equal = if ours == theirs { "equal" } else { "DIFFERENT" };
    drop((ours, theirs));

    let merged = merge_dict(target.clone(), patch.clone())?;
    let (t, p, m) = (
        accounts_of(target)?,
        accounts_of(patch)?,
        accounts_of(&merged)?,
    );
    let union = t
        .keys()
        .chain(p.keys().filter(|k| !t.contains_key(*k)))
        .count();
    let tags_appended = p.iter().filter(|(k, _)| t.contains_key(*k)).all(|(k, pv)| {
        let before = t[k]["tags"].as_array().map_or(0, Vec::len);
        let after = m[k]["tags"].as_array();
        after.is_some_and(|a| a.len() == before + 1 && a.last() == pv["tags"].get(0))
    });
    let merge_dict = if m.len() == union && tags_appended && merged["version"] == patch["version"] {
        "all accounts"
    } else {
        "WRONG"
    };
    Ok(Checks {
        merge_patch_equal,
        merge_dict,
    })
}

fn accounts_of(v: &Value) -> Result<&serde_json::Map<String, Value>, &'static str> {
    v["accounts"]
        .as_object()
        .ok_or("a merge document has no `accounts` object")
}
