//! The documents of the merge benchmark (`merge.rs`, scenario 4): a target
//! of wallet accounts and a patch touching part of it, generated
//! deterministically.

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
pub(crate) fn documents(bytes: usize) -> (Value, Value) {
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
