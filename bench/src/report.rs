//! Output of the benchmarks: Markdown tables on stdout (pasteable into
//! BENCHMARKS.md) and JSON lines appended to the `--json` file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Median of `v` (mean of the middle two for an even count); NaN when empty
/// or when any run is NaN (shown as "–").
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    // A NaN run (no committed op, so no latency) makes the median unknown:
    // dropping it would report the other runs as if it had not happened.
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// A table printed as Markdown.
pub(crate) struct Table {
    title: String,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>, headers: Vec<&'static str>) -> Self {
        Self {
            title: title.into(),
            headers,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 || c.chars().next().is_some_and(char::is_alphabetic) {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("\n### {}\n", self.title);
        println!(
            "{}",
            line(self.headers.iter().map(|h| (*h).to_owned()).collect())
        );
        let seps: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", seps.join("-|-"));
        for r in &self.rows {
            println!("{}", line(r.clone()));
        }
        println!();
    }
}

/// `x` with `d` decimals, `–` for NaN.
pub(crate) fn num(x: f64, d: usize) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else {
        format!("{x:.d$}")
    }
}

/// JSON lines appended to a file; each record gets the run's id, the git
/// commit and the time.
pub(crate) struct JsonSink {
    file: Option<File>,
    base: serde_json::Map<String, Value>,
}

impl JsonSink {
    pub(crate) fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let commit = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mut base = serde_json::Map::new();
        base.insert("run_ts".into(), json!(ts));
        base.insert("commit".into(), json!(commit));
        base.insert("cores".into(), json!(cores));
        Ok(Self { file, base })
    }

    /// Appends `record` (an object) with the common fields.
    pub(crate) fn write(&mut self, record: Value) -> std::io::Result<()> {
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        let mut obj = self.base.clone();
        if let Value::Object(m) = record {
            obj.extend(m);
        }
        writeln!(f, "{}", Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_nan_run_makes_the_median_unknown() {
        assert!(median(vec![1.0, f64::NAN, 3.0]).is_nan());
        assert!(median(Vec::new()).is_nan());
    }
}
