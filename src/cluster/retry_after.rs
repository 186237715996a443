//! A tower layer under kube's client that keeps a server's `Retry-After` header: kube turns an error answer's body
//! into a `Status` and drops the headers, so for 429 and 503 answers with the header the layer writes the delay into
//! the Status' `details.retryAfterSeconds` (where the API server itself puts it for its own 429s). [`super::retry`]
//! reads it from there.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAfterLayer;

impl<S> tower::Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;
    fn layer(&self, inner: S) -> RetryAfter<S> {
        RetryAfter(inner)
    }
}

#[derive(Debug, Clone)]
pub struct RetryAfter<S>(S);

impl<S, B> tower::Service<Request<kube::client::Body>> for RetryAfter<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<UnsyncBoxBody<Bytes, BoxError>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let resp = fut.await.map_err(Into::into)?;
            let (parts, body) = resp.into_parts();
            let asked = parts.headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(seconds);
            match asked {
                Some(secs)
                    if parts.status == StatusCode::TOO_MANY_REQUESTS
                        || parts.status == StatusCode::SERVICE_UNAVAILABLE =>
                {
                    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
                    let bytes = with_retry_after(&bytes, parts.status.as_u16(), secs);
                    Ok(Response::from_parts(parts, Full::new(bytes).map_err(|never| match never {}).boxed_unsync()))
                }
                _ => Ok(Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())),
            }
        })
    }
}

/// `Retry-After` in delay-seconds form (the HTTP-date form is not used by API servers; it is ignored).
fn seconds(value: &str) -> Option<u32> {
    value.trim().parse().ok()
}

/// The answer's body as a Status carrying `details.retryAfterSeconds` (kept when the server set it already).
pub fn with_retry_after(body: &[u8], code: u16, secs: u32) -> Bytes {
    let mut status = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v["kind"] == "Status" => v,
        _ => serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": code,
            "reason": if code == 429 { "TooManyRequests" } else { "ServiceUnavailable" },
            "message": String::from_utf8_lossy(body).trim().to_string(),
        }),
    };
    if !status["details"].is_object() {
        status["details"] = serde_json::json!({});
    }
    if status["details"]["retryAfterSeconds"].as_u64().unwrap_or(0) == 0 {
        status["details"]["retryAfterSeconds"] = secs.into();
    }
    Bytes::from(status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_lands_in_the_status_details() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}"#;
        let s: kube::core::Status = serde_json::from_slice(&with_retry_after(body, 429, 7)).unwrap();
        assert_eq!(s.details.unwrap().retry_after_seconds, 7);
        assert_eq!(s.code, 429);

        // The server's own value stays.
        let body = br#"{"kind":"Status","status":"Failure","code":429,"details":{"retryAfterSeconds":3}}"#;
        let s: kube::core::Status = serde_json::from_slice(&with_retry_after(body, 429, 7)).unwrap();
        assert_eq!(s.details.unwrap().retry_after_seconds, 3);

        // A proxy's plain-text 503 becomes a Status.
        let s: kube::core::Status = serde_json::from_slice(&with_retry_after(b"busy\n", 503, 2)).unwrap();
        assert_eq!((s.code, s.reason.as_str(), s.message.as_str()), (503, "ServiceUnavailable", "busy"));
        assert_eq!(s.details.unwrap().retry_after_seconds, 2);
        assert_eq!(seconds(" 5 "), Some(5));
        assert_eq!(seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
