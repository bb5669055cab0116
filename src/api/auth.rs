//! Auth on every `/api/*` operation but health, sign-in and the published document: the
//! bearer token, or the cookie of a session signed in with it (for pages, whose
//! `EventSource` cannot send headers).

use std::sync::Arc;

use poem::Request;
use poem_openapi::{
    SecurityScheme,
    auth::{ApiKey, Bearer},
};
use subtle::ConstantTimeEq;

use super::cookie_sessions::CookieSessions;

/// The token callers must present, stored in the route's data.
#[derive(Clone)]
pub struct AuthToken(pub String);

/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct BearerAuth(());

async fn check_token(req: &Request, bearer: Bearer) -> Option<()> {
    authorized(req, &bearer.token).then_some(())
}

/// The cookie of a session signed in with `auth_session`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "agent_runtime_session",
    key_in = "cookie",
    checker = "check_cookie"
)]
pub struct CookieAuth(());

async fn check_cookie(req: &Request, cookie: ApiKey) -> Option<()> {
    req.data::<Arc<CookieSessions>>()
        .is_some_and(|sessions| sessions.is_open(&cookie.key))
        .then_some(())
}

/// Either credential.
#[derive(SecurityScheme)]
pub enum Auth {
    Bearer(BearerAuth),
    Cookie(CookieAuth),
}

/// Whether `presented` is the configured token. Constant time, so the comparison leaks
/// nothing about how much of a guess was right.
pub fn authorized(req: &Request, presented: &str) -> bool {
    req.data::<AuthToken>()
        .is_some_and(|expected| token_matches(presented, &expected.0))
}

/// Constant-time comparison of a presented token with the expected one.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// The bearer token of a request, if any: the first `Authorization` header, scheme
/// `Bearer` in any case (as the OpenAPI scheme reads it).
pub fn bearer_of(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then_some(token.trim())
}

/// Whether `path` is served without credentials: health, sign-in, the published document
/// (it is no secret, and clients are generated from its URL), and everything outside
/// `/api`, the OpenAI-compatible `/v1` and `/metrics` (the landing page, Swagger UI).
pub fn is_open(path: &str) -> bool {
    let guarded = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    !(guarded("/api") || guarded("/v1") || path == METRICS_PATH)
        || matches!(
            path,
            "/api/health"
                | "/api/health/live"
                | "/api/health/ready"
                | "/api/auth/session"
                | "/api/openapi.json"
                | "/api/openapi.yaml"
        )
}

/// Prometheus' scrape path: behind the token unless `METRICS_PUBLIC=true`.
pub const METRICS_PATH: &str = "/metrics";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_and_pages_outside_the_api_are_open() {
        for open in [
            "/api/health",
            "/",
            "/docs",
            "/docs/index.html",
            "/apis",
            "/nothing",
            "/api/openapi.json",
            "/api/openapi.yaml",
            "/api/auth/session",
            "/api/health/live",
            "/api/health/ready",
            "/v1x",
        ] {
            assert!(is_open(open), "{open}");
        }
        for closed in [
            "/api",
            "/api/",
            "/api/presets/list",
            "/api/auth/logout",
            "/api/openapi.jsonx",
            "/api/health/x",
            "/api/info",
            "/api/nope",
            "/v1",
            "/v1/models",
            "/v1/chat/completions",
        ] {
            assert!(!is_open(closed), "{closed}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let token = |value: &str| {
            let req = Request::builder()
                .header(poem::http::header::AUTHORIZATION, value)
                .finish();
            bearer_of(&req).map(str::to_owned)
        };
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer"), None);
        assert!(
            token_matches("abc", "abc")
                && !token_matches("abd", "abc")
                && !token_matches("ab", "abc")
        );
    }
}
