//! Small pieces every HTTP handler uses: JSON and error responses in the one
//! error shape of the API (`{"error": {"code", "message"}}`), query-string
//! parsing, and bounded body reading.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode, header};

pub type Resp = Response<Full<Bytes>>;

/// An API error: the status, a stable machine-readable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_s: Option<u64>,
    /// For a 401: the `WWW-Authenticate` challenge.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn into_response(self) -> Resp {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = json(self.status, &body);
        if let Some(s) = self.retry_after_s {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        if let Some(c) = self.challenge {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(c),
            );
        }
        r
    }
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Resp {
    let body = serde_json::to_vec(value).expect("response serialises");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

pub fn empty(status: StatusCode) -> Resp {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("static response parts")
}

/// Parses `a=1&b=2`, percent-decoding values; a repeated key keeps the last.
pub fn query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.insert(decode(k), decode(v));
    }
    out
}

/// A query parameter parsed as `T`, with a 400 that names it when it is not.
pub fn param<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(
                "bad_parameter",
                format!("query parameter `{name}` has an invalid value {v:?}"),
            )
        }),
    }
}

/// Reads the whole body, refusing more than `max` bytes with 413 — up front
/// when `Content-Length` says so, while streaming otherwise.
pub async fn read_body(
    headers: &hyper::HeaderMap,
    body: Incoming,
    max: u64,
) -> Result<Bytes, ApiError> {
    read_body_limited(headers, body, max, "payload_bytes_max").await
}

/// [`read_body`] with the name of the limit that applies, for the error.
pub async fn read_body_limited(
    headers: &hyper::HeaderMap,
    body: Incoming,
    max: u64,
    limit: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {limit} ({max} bytes)"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large());
    }
    match Limited::new(body, max as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(
            "bad_body",
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Parses a JSON body into `T`, with serde's line and column in the 400.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}

pub fn format_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        ApiError::bad_request(
            "bad_time",
            format!("{s:?} is not an RFC 3339 UTC time such as 2026-11-23T10:00:00Z: {e}"),
        )
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}
