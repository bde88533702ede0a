//! Decoding request bodies into events: the original's form encoding
//! (`event_name`, `data` as JSON text, extra fields such as `xdata` ignored),
//! a JSON body `{"event_name": …, "data": …}`, and the Standard Webhooks
//! JSON envelope `{"type": …, "timestamp": …, "data": …}` (svix-style
//! senders), whose `type` is the event name.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use serde_json::Value;

use crate::events::handlers::extract::Event;

/// The body encodings the listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Form,
    Json,
}

impl BodyKind {
    /// Classifies a `Content-Type` header value (parameters and case ignored).
    pub(crate) fn from_content_type(value: &str) -> Option<Self> {
        let essence = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-www-form-urlencoded" => Some(BodyKind::Form),
            "application/json" => Some(BodyKind::Json),
            _ => None,
        }
    }
}

/// Why a body is not a valid event (all answered 400).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body has no non-empty `{0}` field")]
    MissingField(&'static str),
    #[error("the `data` field is not valid JSON: {0}")]
    InvalidData(#[source] serde_json::Error),
    #[error("the body is not valid JSON: {0}")]
    InvalidJsonBody(#[source] serde_json::Error),
    #[error(
        "the JSON body must be an object with `event_name` (or `type`, as Standard Webhooks sends) and `data`"
    )]
    NotAnObject,
    #[error("`event_name` must be a non-empty string")]
    EventNameNotAString,
}

impl RequestError {
    /// A stable machine-readable code for the JSON error reply.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            RequestError::NotUtf8 => "body_not_utf8",
            RequestError::MissingField(_) => "missing_field",
            RequestError::InvalidData(_) => "invalid_data_json",
            RequestError::InvalidJsonBody(_) => "invalid_json_body",
            RequestError::NotAnObject => "json_body_not_an_object",
            RequestError::EventNameNotAString => "invalid_event_name",
        }
    }
}

/// Decodes a body of the given kind into an event.
pub(crate) fn decode(kind: BodyKind, body: &[u8]) -> Result<Event, RequestError> {
    match kind {
        BodyKind::Form => decode_form(body),
        BodyKind::Json => decode_json(body),
    }
}

fn decode_form(body: &[u8]) -> Result<Event, RequestError> {
    let (name, data) = form_fields(body)?;
    let data: Value = serde_json::from_str(&data).map_err(RequestError::InvalidData)?;
    Ok(Event::new(&*name, data))
}

/// The `event_name` and `data` fields of a form body.
fn form_fields(body: &[u8]) -> Result<(Cow<'_, str>, Cow<'_, str>), RequestError> {
    std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
    // Like Python's parse_qs: blank values are dropped and the first value of
    // a field wins. Only the two fields read are decoded (the `xdata` copy of
    // the data is skipped), and nothing is copied when there is nothing to
    // unescape.
    let (mut data, mut name) = (None, None);
    for pair in body.split(|&b| b == b'&') {
        if data.is_some() && name.is_some() {
            break;
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        // an escaped value is never blank when its raw form is not
        if value.is_empty() {
            continue;
        }
        let slot = match &*form_unescape(key) {
            "data" => &mut data,
            "event_name" => &mut name,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(form_unescape(value));
        }
    }
    let data = data.ok_or(RequestError::MissingField("data"))?;
    let name = name.ok_or(RequestError::MissingField("event_name"))?;
    Ok((name, data))
}

/// Decodes one name or value of an `application/x-www-form-urlencoded` body
/// as the WHATWG URL standard (and `form_urlencoded`) does: `+` is a space,
/// `%XX` a byte (by `percent-encoding`), a `%` not followed by two hex digits
/// stays; bytes that do not form UTF-8 after unescaping become U+FFFD.
/// Borrows when there is nothing to unescape.
fn form_unescape(raw: &[u8]) -> Cow<'_, str> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_decode(&spaced).decode_utf8_lossy().into_owned())
    } else {
        percent_decode(raw).decode_utf8_lossy()
    }
}

fn decode_json(body: &[u8]) -> Result<Event, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(RequestError::InvalidJsonBody)?;
    let Value::Object(mut object) = value else {
        return Err(RequestError::NotAnObject);
    };
    // `event_name` (this crate's JSON form) or `type` (Standard Webhooks).
    let name = match object
        .remove("event_name")
        .or_else(|| object.remove("type"))
    {
        None => return Err(RequestError::MissingField("event_name")),
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(_) => return Err(RequestError::EventNameNotAString),
    };
    let data = object
        .remove("data")
        .ok_or(RequestError::MissingField("data"))?;
    Ok(Event::new(name, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            BodyKind::from_content_type("application/x-www-form-urlencoded; charset=UTF-8"),
            Some(BodyKind::Form)
        );
        assert_eq!(
            BodyKind::from_content_type("Application/JSON"),
            Some(BodyKind::Json)
        );
        assert_eq!(BodyKind::from_content_type("text/plain"), None);
    }

    #[test]
    fn form_takes_first_non_blank_value_and_ignores_xdata() {
        let e = decode(
            BodyKind::Form,
            b"event_name=&event_name=a+b&data=%7B%22x%22%3A+1%7D&xdata=junk&data=2",
        )
        .unwrap();
        assert_eq!(e.name(), "a b");
        assert_eq!(e.data(), &json!({"x": 1}));
    }

    #[test]
    fn form_errors() {
        assert!(matches!(
            decode(BodyKind::Form, b"event_name=x"),
            Err(RequestError::MissingField("data"))
        ));
        assert!(matches!(
            decode(BodyKind::Form, b"data=1"),
            Err(RequestError::MissingField("event_name"))
        ));
        assert!(matches!(
            decode(BodyKind::Form, b"event_name=x&data=%7B"),
            Err(RequestError::InvalidData(_))
        ));
        assert!(matches!(
            decode(BodyKind::Form, b"\xff"),
            Err(RequestError::NotUtf8)
        ));
    }

    /// What the form decoding did before it was hand-written: every pair
    /// decoded by `serde_urlencoded`, the first non-blank value of a field.
    fn reference(body: &str) -> Result<(String, String), &'static str> {
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
        let first = |name: &str| {
            fields
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let data = first("data").ok_or("data")?;
        let name = first("event_name").ok_or("event_name")?;
        Ok((name, data))
    }

    proptest::proptest! {
        #[test]
        fn form_fields_match_serde_urlencoded(
            body in "((event_name|data|xdata|d%61ta|event%5Fname|dat%61|x)(=([a-z0-9]|\\+|%|%2|%7B|%22|%e9|%C3%A9|%C3|%ff|%2b|%2B|%%41|1|=|é| )*)?&*){0,5}"
        ) {
            let got = match form_fields(body.as_bytes()) {
                Ok((name, data)) => Ok((name.into_owned(), data.into_owned())),
                Err(RequestError::MissingField(f)) => Err(f),
                Err(e) => panic!("{e}"),
            };
            proptest::prop_assert_eq!(got, reference(&body));
        }
    }

    #[test]
    fn json_bodies() {
        let e = decode(
            BodyKind::Json,
            br#"{"event_name":"t","data":[1],"extra":0}"#,
        )
        .unwrap();
        assert_eq!((e.name(), e.data()), ("t", &json!([1])));
        let e = decode(
            BodyKind::Json,
            br#"{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":1}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.name(), e.data()),
            ("invoice.paid", &json!({"id": 1})),
            "the Standard Webhooks envelope"
        );
        assert!(matches!(
            decode(BodyKind::Json, b"[]"),
            Err(RequestError::NotAnObject)
        ));
        assert!(matches!(
            decode(BodyKind::Json, br#"{"event_name":1,"data":1}"#),
            Err(RequestError::EventNameNotAString)
        ));
        assert!(matches!(
            decode(BodyKind::Json, br#"{"event_name":"t"}"#),
            Err(RequestError::MissingField("data"))
        ));
        assert!(matches!(
            decode(BodyKind::Json, b"{"),
            Err(RequestError::InvalidJsonBody(_))
        ));
    }
}
