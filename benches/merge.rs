//! Deep merge on 1 MB and 10 MB documents: conflictkit's `merge_with` (RFC 7396
//! options and the original's rules) against `json_patch::merge`, with the cost
//! of one deep clone of the target as a yardstick (what `merge_into` avoids).
//!
//! `cargo bench --bench merge` (add `--no-default-features` to skip building the
//! database drivers; the merge needs none).

use std::hint::black_box;
use std::time::Duration;

use conflictkit::merge::{MergeOptions, merge_with};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_main};
use serde_json::{Map, Value, json};

/// A deterministic pseudo-random stream (SplitMix64), so every run merges the
/// same documents.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One wallet account, about 300 bytes of JSON.
fn account(stream: &mut Stream, id: u64) -> Value {
    let currency = ["BTC", "ETH", "DOGE"][stream.below(3) as usize];
    json!({
        "id": id,
        "name": format!("account-{id}-{:x}", stream.next()),
        "balance": stream.below(1_000_000) as f64 / 100.0,
        "currency": currency,
        "tags": (0..stream.below(4)).map(|i| format!("tag{i}")).collect::<Vec<_>>(),
        "limits": {"daily": stream.below(10_000), "monthly": stream.below(100_000)},
        "meta": {
            "created": format!("2025-{:02}-{:02}T00:00:00Z", 1 + stream.below(12), 1 + stream.below(28)),
            "flags": {"frozen": stream.below(2) == 0, "verified": stream.below(2) == 0},
            "notes": format!("{:x}{:x}", stream.next(), stream.next()),
        },
    })
}

/// A target of about `bytes` of JSON, and a patch touching every other account
/// (changed balances, a new tag, a new nested key) plus 10% new accounts: about
/// a quarter of the target's size, with no clash under either rule set.
fn documents(bytes: usize) -> (Value, Value) {
    let mut stream = Stream(0x5EED);
    let mut accounts = Map::new();
    let mut id = 0;
    let mut size = 0;
    while size < bytes {
        let value = account(&mut stream, id);
        size += serde_json::to_vec(&value).map_or(0, |encoded| encoded.len()) + 16;
        accounts.insert(format!("acct{id:08}"), value);
        id += 1;
    }
    let mut patch = Map::new();
    for n in (0..id).step_by(2) {
        patch.insert(
            format!("acct{n:08}"),
            json!({
                "balance": stream.below(1_000_000) as f64 / 100.0,
                "tags": ["patched"],
                "meta": {"flags": {"reviewed": true}},
            }),
        );
    }
    for n in id..id + id / 10 {
        patch.insert(format!("acct{n:08}"), account(&mut stream, n));
    }
    (
        json!({"version": 1, "accounts": accounts}),
        json!({"version": 2, "accounts": patch}),
    )
}

fn bench(c: &mut Criterion) {
    for (label, bytes) in [("1MB", 1 << 20), ("10MB", 10 << 20)] {
        let (target, patch) = documents(bytes);
        let mut group = c.benchmark_group("merge");
        group.sample_size(if bytes > 1 << 20 { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(5));

        group.bench_function(BenchmarkId::new("conflictkit_merge_patch", label), |b| {
            b.iter_batched(
                || (target.clone(), patch.clone()),
                |(mut a, p)| {
                    merge_with(&mut a, p, MergeOptions::MERGE_PATCH).unwrap_or_default();
                    a
                },
                BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("conflictkit_original", label), |b| {
            b.iter_batched(
                || (target.clone(), patch.clone()),
                |(mut a, p)| {
                    merge_with(&mut a, p, MergeOptions::ORIGINAL).unwrap_or_default();
                    a
                },
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
