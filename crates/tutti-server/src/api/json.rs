//! Request extractors that answer bad input with the server's own error: [`ApiJson`] for
//! bodies (400 with the field path, 413 over the limit, 415 for another media type) and
//! [`ApiQuery`] for query strings (400 naming the parameter).
//!
//! axum's own `Json` rejection is plain text with a different shape; these keep every
//! error of the API in one JSON form, and name the failing field as `targets.agents[1]`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use tutti_store::MAX_PAGE_LIMIT;

use crate::error::Error;

/// A JSON body decoded strictly, with errors naming the field path.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        if !is_json(request.headers().get(CONTENT_TYPE)) {
            return Err(Error::UnsupportedMediaType(
                "expected a JSON body (Content-Type: application/json)".into(),
            ));
        }
        let bytes = read_body(request, state).await?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// Reads the whole body; over the configured limit is 413.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::TooLarge("the request body is larger than the server accepts".into())
            } else {
                Error::bad_request(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })
}

/// Decodes a JSON body; errors name the field path and position.
///
/// Every request body of the API is an object. serde's derived structs also accept an
/// array of the fields in order (`[]` would be an object with every optional field
/// unset), so anything but an object is refused before decoding.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.is_empty() {
        return Err(Error::bad_request("invalid JSON: the body is empty"));
    }
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Error::bad_request(
            "invalid JSON: the body must be a JSON object ({...})",
        ));
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        Error::BadRequest(format!(
            "invalid JSON: {} (line {}, column {})",
            strip_position(&err.to_string()),
            err.line(),
            err.column()
        ))
    })?;
    whole_numbers(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|err| Error::BadRequest(describe_json_error(&err)))
}

/// Turns `30.0` into `30` throughout a document: JSON Schema (and so the OpenAPI document
/// and the tools that read it) counts both as the same integer, while serde would refuse
/// the first for an integer field. Fractions and numbers beyond 64 bits stay as they are.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.fract() == 0.0 && (-9.0e15..=9.0e15).contains(&float) {
                *number = serde_json::Number::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// `invalid JSON at targets.agents[1]: invalid agent id "A B": ...`.
pub fn describe_json_error(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = err.path().to_string();
    let inner = err.inner();
    let message = strip_position(&inner.to_string());
    if path == "." || path == "?" || path.is_empty() {
        if inner.line() == 0 {
            // Decoded from a parsed document, which has no positions.
            return format!("invalid JSON: {message}");
        }
        format!(
            "invalid JSON: {message} (line {}, column {})",
            inner.line(),
            inner.column()
        )
    } else {
        format!("invalid JSON at {path}: {message}")
    }
}

/// serde_json appends " at line L column C"; the path is more useful to API clients.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Whether a Content-Type header says JSON.
pub fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    media_type(value).is_some_and(|media| media == "application/json" || media.ends_with("+json"))
}

/// The media type of a Content-Type header, lowercased, without parameters.
pub fn media_type(value: Option<&axum::http::HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let media = text.split(';').next()?.trim().to_ascii_lowercase();
    Some(media)
}

/// A query string decoded into `T`; errors name the parameter.
///
/// Before decoding, the same rules hold for every list: `limit` is 1 to [`MAX_PAGE_LIMIT`]
/// and `offset` (and every `*_offset`) at most [`MAX_OFFSET`], each refused with 400 rather
/// than clamped. An empty value is a value like any other: `?limit=` is not a number (400),
/// `?from=` not a time (400), `?search=` the empty text. (Leaving a parameter out is how
/// to say "absent".)
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

/// The largest `offset` a list accepts: far past any list tutti keeps, and well inside the
/// database's signed 64-bit row offsets.
pub const MAX_OFFSET: u64 = 1_000_000_000;

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        check_paging(parts.uri.query().unwrap_or_default())?;
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| {
                Error::BadRequest(format!("invalid query string: {}", rejection.body_text()))
            })
    }
}

/// Checks the paging parameters of a query string.
fn check_paging(query: &str) -> Result<(), Error> {
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "limit" {
            let limit = value.parse::<u32>().ok();
            if limit.is_none_or(|limit| !(1..=MAX_PAGE_LIMIT).contains(&limit)) {
                return Err(Error::bad_request(format!(
                    "invalid query string: limit must be a whole number from 1 to {MAX_PAGE_LIMIT}, got {value:?}"
                )));
            }
        }
        if key == "offset" || key.ends_with("_offset") {
            let offset = value.parse::<u64>().ok();
            if offset.is_none_or(|offset| offset > MAX_OFFSET) {
                return Err(Error::bad_request(format!(
                    "invalid query string: {key} must be a whole number from 0 to {MAX_OFFSET}, got {value:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Whether a media type (from [`media_type`]) names YAML, in any of its common spellings.
pub fn is_yaml(media: Option<&str>) -> bool {
    matches!(
        media,
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml")
    )
}

/// A manifest body as text; a body that is not UTF-8 is 400.
pub fn manifest_text(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes)
        .map_err(|err| Error::bad_request(format!("the manifest is not UTF-8: {err}")))
}
