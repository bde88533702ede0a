//! Deep merge on 1 MB and 10 MB documents: conflictkit's `merge_with` (RFC 7396
//! options and the original's rules) against `json_patch::merge`, with the cost
//! of one deep clone of the target as a yardstick (what `merge_into` avoids).
//!
//! Every way starts from a borrowed patch, as `json_patch::merge` does: the
//! conflictkit ways clone it inside the timed routine, since they take it by
//! value. Each way is run once before timing and must succeed; the timed
//! routines return the merge's `Result`, so nothing is discarded unseen.
//!
//! `cargo bench --bench merge` (add `--no-default-features` to skip building the
//! database drivers; the merge needs none).

use std::hint::black_box;
use std::time::Duration;

use conflictkit::merge::{MergeError, MergeOptions, merge_with};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_main};
use serde_json::Value;

#[path = "support/merge_docs.rs"]
mod merge_docs;

use merge_docs::documents;

/// `target` merged with `patch` (borrowed, copied in) under `options`.
fn merged(target: Value, patch: &Value, options: MergeOptions) -> Result<Value, MergeError> {
    let mut a = target;
    merge_with(&mut a, black_box(patch).clone(), options)?;
    Ok(a)
}

fn bench(c: &mut Criterion) {
    for (label, bytes) in [("1MB", 1 << 20), ("10MB", 10 << 20)] {
        let (target, patch) = documents(bytes);
        for options in [MergeOptions::MERGE_PATCH, MergeOptions::ORIGINAL] {
            if let Err(error) = merged(target.clone(), &patch, options) {
                eprintln!(
                    "merge {label} with {options:?} fails on the generated documents: {error}"
                );
                std::process::exit(1);
            }
        }
        let mut group = c.benchmark_group("merge");
        group.sample_size(if bytes > 1 << 20 { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(5));

        group.bench_function(BenchmarkId::new("conflictkit_merge_patch", label), |b| {
            b.iter_batched(
                || target.clone(),
                |a| merged(a, &patch, MergeOptions::MERGE_PATCH),
                BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("conflictkit_original", label), |b| {
            b.iter_batched(
                || target.clone(),
                |a| merged(a, &patch, MergeOptions::ORIGINAL),
                BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("json_patch_merge", label), |b| {
            b.iter_batched(
                || target.clone(),
                |mut a| {
                    json_patch::merge(&mut a, black_box(&patch));
                    a
                },
                BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("clone_target_yardstick", label), |b| {
            b.iter(|| black_box(&target).clone());
        });
        group.finish();
    }
}

/// criterion's generated group function, which carries no docs.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}

criterion_main!(group::benches);
