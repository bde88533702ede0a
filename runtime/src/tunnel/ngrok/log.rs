//! Reading the agent's JSON log: one object per line, keys in any order.
//!
//! Lines look like (ngrok 2.3.41, `-log=stdout -log-format=json`):
//!
//! ```text
//! {"addr":"127.0.0.1:4040","lvl":"info","msg":"starting web service","obj":"web","t":"…"}
//! {"addr":"http://localhost:8080","lvl":"info","msg":"started tunnel","name":"command_line","obj":"tunnels","proto":"https","t":"…","url":"https://ab12.ngrok.io"}
//! {"err":"…ERR_NGROK_4018…","lvl":"eror","msg":"failed to reconnect session","obj":"csess","t":"…"}
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How many output lines are kept for error reports.
const KEPT_LINES: usize = 20;

/// What a log line means to the startup logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogEvent {
    /// `starting web service`, with its address.
    WebService(String),
    /// `started tunnel`, with its public URL.
    Tunnel(String),
    /// An `eror`/`crit` line. `code` is the `N` of `ERR_NGROK_N` when present;
    /// `text` is `msg: err`.
    Failure { code: Option<u32>, text: String },
}

/// Parses one (already redacted) line; `None` for lines that are not JSON
/// objects or carry nothing the startup logic needs.
pub(crate) fn parse_line(line: &str) -> Option<LogEvent> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line.trim()) else {
        return None;
    };
    let msg = str_field(&obj, "msg").unwrap_or_default();
    match msg {
        "starting web service" => obj.get("addr").map(addr_text).map(LogEvent::WebService),
        "started tunnel" => str_field(&obj, "url").map(|url| LogEvent::Tunnel(url.to_owned())),
        _ => {
            let lvl = str_field(&obj, "lvl").unwrap_or_default();
            if !matches!(lvl, "eror" | "error" | "crit") {
                return None;
            }
            let err = obj.get("err").map(value_text).unwrap_or_default();
            let code = err_code(&err).or_else(|| err_code(msg));
            let err = tidy(&err);
            let text = match (msg.is_empty(), err.is_empty()) {
                (false, false) => format!("{msg}: {err}"),
                (false, true) => msg.to_owned(),
                _ => err,
            };
            Some(LogEvent::Failure { code, text })
        }
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An address that may be logged as a string or as an object: Go's
/// `net.TCPAddr` (`{"IP":…,"Port":…}`) or `url.URL` (`{"Scheme":…,"Host":…}`).
fn addr_text(value: &Value) -> String {
    let Value::Object(obj) = value else {
        return value_text(value);
    };
    let get = |key: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    };
    if let Some(host) = get("host").and_then(Value::as_str) {
        return match get("scheme").and_then(Value::as_str) {
            Some(scheme) if !scheme.is_empty() => format!("{scheme}://{host}"),
            _ => host.to_owned(),
        };
    }
    if let (Some(ip), Some(port)) = (get("ip").and_then(Value::as_str), get("port")) {
        let port = value_text(port);
        return if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
    }
    value.to_string()
}

/// The `N` of the first `ERR_NGROK_N` in `text`.
fn err_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("ERR_NGROK_")? + "ERR_NGROK_".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Collapses the agent's multi-line error text into one line.
fn tidy(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces secrets by `[REDACTED]`.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for `secret` (nothing to do when it is `None` or empty).
    pub(crate) fn new(secret: Option<&str>) -> Self {
        Self {
            secrets: secret
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .into_iter()
                .collect(),
        }
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret, "[REDACTED]")
        })
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// The agent's last output lines, for error reports.
#[derive(Debug, Default)]
pub(crate) struct LogBook {
    lines: Mutex<VecDeque<String>>,
}

impl LogBook {
    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// A copy of the kept lines, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

/// Reads `reader` line by line until EOF: redacts each line, logs it, keeps it
/// in `book` and sends what it means on `events`. Keeps draining after the
/// receiver is gone, so the agent never blocks on a full pipe.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    stream: &'static str,
    pid: u32,
    redactor: Redactor,
    book: Arc<LogBook>,
    events: mpsc::UnboundedSender<LogEvent>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                let raw = String::from_utf8_lossy(&buf);
                let line = redactor.redact(raw.trim_end_matches(['\r', '\n']));
                if line.is_empty() {
                    continue;
                }
                tracing::debug!(target: "conflictkit::tunnel::ngrok::agent", pid, stream, "{line}");
                if let Some(event) = parse_line(&line) {
                    let _ = events.send(event);
                }
                book.push(line);
            }
            Err(err) => {
                tracing::warn!(pid, stream, %err, "could not read the ngrok agent's output");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_service_addr_as_string_or_object() {
        assert_eq!(
            parse_line(
                r#"{"obj":"web","addr":"127.0.0.1:4041","msg":"starting web service","lvl":"info"}"#
            ),
            Some(LogEvent::WebService("127.0.0.1:4041".into()))
        );
        assert_eq!(
            parse_line(
                r#"{"lvl":"info","msg":"starting web service","addr":{"IP":"::1","Port":4042,"Zone":""}}"#
            ),
            Some(LogEvent::WebService("[::1]:4042".into()))
        );
        assert_eq!(
            parse_line(
                r#"{"msg":"starting web service","addr":{"Scheme":"http","Host":"127.0.0.1:4043"}}"#
            ),
            Some(LogEvent::WebService("http://127.0.0.1:4043".into()))
        );
    }

    #[test]
    fn started_tunnel_takes_url() {
        assert_eq!(
            parse_line(
                r#"{"url":"https://x.ngrok.io","msg":"started tunnel","addr":{"Scheme":"http","Host":"localhost:80"}}"#
            ),
            Some(LogEvent::Tunnel("https://x.ngrok.io".into()))
        );
    }

    #[test]
    fn errors_carry_their_code_and_one_line_text() {
        let line = r#"{"err":"authentication failed: Usage of ngrok requires an authtoken.\r\n\r\nERR_NGROK_4018\r\n","lvl":"eror","msg":"session closing"}"#;
        assert_eq!(
            parse_line(line),
            Some(LogEvent::Failure {
                code: Some(4018),
                text: "session closing: authentication failed: Usage of ngrok requires an authtoken. ERR_NGROK_4018".into()
            })
        );
        let line = r#"{"lvl":"eror","msg":"failed to reconnect session","err":"dial tcp: lookup x: no such host"}"#;
        assert_eq!(
            parse_line(line),
            Some(LogEvent::Failure {
                code: None,
                text: "failed to reconnect session: dial tcp: lookup x: no such host".into()
            })
        );
    }

    #[test]
    fn other_lines_mean_nothing() {
        assert_eq!(parse_line("ERROR: not json"), None);
        assert_eq!(
            parse_line(r#"{"lvl":"warn","msg":"failed to check for update","err":"x"}"#),
            None
        );
        assert_eq!(parse_line("[1, 2]"), None);
    }

    #[test]
    fn redactor_replaces_every_occurrence() {
        let r = Redactor::new(Some("s3cr3t"));
        assert_eq!(r.redact("a s3cr3t b s3cr3t"), "a [REDACTED] b [REDACTED]");
        assert_eq!(Redactor::new(Some("")).redact("abc"), "abc");
    }

    #[test]
    fn log_book_keeps_the_last_lines() {
        let book = LogBook::default();
        for i in 0..KEPT_LINES + 5 {
            book.push(i.to_string());
        }
        let lines = book.lines();
        assert_eq!(lines.len(), KEPT_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("5"));
    }
}
