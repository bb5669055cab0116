//! Cross-origin pages (spec 06, browsers): only origins listed in `CORS_ORIGINS` get CORS
//! headers, with credentials. A request from any other origin is answered as if CORS did
//! not exist, so the browser keeps the page from reading it; same-origin requests (which
//! browsers also send with `Origin`) are unaffected.

use poem::{
    Request, Response,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};

/// Methods of the API (reads are GET, writes POST).
const METHODS: &str = "GET, POST";

/// Request headers a page may send: the bearer token, JSON bodies, the resume cursor and
/// the retry key of run operations.
const HEADERS: &str = "authorization, content-type, last-event-id, idempotency-key";

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The allowed origins, lower-case.
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    pub fn new(origins: Vec<String>) -> Self {
        Self(origins)
    }

    /// The request's `Origin` when it is allowed (the value the answer's CORS headers echo).
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.0.contains(&text).then(|| origin.clone())
    }

    /// The answer to a preflight from an allowed origin; `None` for any other request.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::OPTIONS
            || !req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = self.allowed_origin(req.headers())?;
        let mut resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
        let headers = resp.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        allow(headers, origin);
        Some(resp)
    }
}

/// The CORS headers of an answer to `origin` (an allowed one), credentials included.
pub fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    // The answer depends on the origin: caches must not hand it to another.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> CorsOrigins {
        CorsOrigins::new(vec!["https://chat.lan".into()])
    }

    fn preflight(origin: &str) -> Request {
        Request::builder()
            .method(Method::OPTIONS)
            .uri_str("/api/conversations/run")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .finish()
    }

    #[test]
    fn an_allowed_origin_gets_its_preflight_answered_with_credentials() {
        let resp = origins().preflight(&preflight("https://Chat.lan")).unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let h = resp.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://Chat.lan");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], METHODS);
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("idempotency-key")
        );
    }

    #[test]
    fn other_origins_and_plain_requests_are_left_alone() {
        assert!(
            origins()
                .preflight(&preflight("https://evil.lan"))
                .is_none()
        );
        assert!(
            CorsOrigins::default()
                .preflight(&preflight("https://chat.lan"))
                .is_none()
        );
        let plain = Request::builder()
            .method(Method::OPTIONS)
            .header(header::ORIGIN, "https://chat.lan")
            .finish();
        assert!(origins().preflight(&plain).is_none(), "not a preflight");

        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.lan"));
        assert_eq!(origins().allowed_origin(&headers), None);
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://CHAT.lan"));
        let origin = origins().allowed_origin(&headers).unwrap();
        let mut resp = Response::builder().finish();
        allow(resp.headers_mut(), origin);
        assert_eq!(
            resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://CHAT.lan"
        );
        assert_eq!(resp.headers()[header::VARY], "Origin");
    }
}
