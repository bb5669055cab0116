//! Bearer-token auth on every `/api/*` operation but health.

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use subtle::ConstantTimeEq;

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

/// Whether `presented` is the configured token. Constant time, so the comparison leaks
/// nothing about how much of a guess was right.
pub fn authorized(req: &Request, presented: &str) -> bool {
    req.data::<AuthToken>()
        .is_some_and(|expected| bool::from(presented.as_bytes().ct_eq(expected.0.as_bytes())))
}

/// The bearer token of a plain (non-OpenAPI) request, if any.
pub fn bearer_of(req: &Request) -> Option<&str> {
    req.headers()
        .get(poem::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
