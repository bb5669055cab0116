//! Signing a page in and out (spec 06, browsers): the token buys a session cookie; signing
//! out ends the session on the server, so its cookie no longer authenticates anywhere.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::Example};

use super::{
    Tag,
    auth::{Auth, AuthToken, bearer_of, token_matches},
    cookie_sessions::{CookieSessions, cookie_of},
    error::{ApiError, ErrorResponse},
};

pub struct SignInApi;

/// Body of `auth_session`.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct SignInRequest {
    /// The service's token (`AUTH_TOKEN`).
    pub token: String,
}

impl Example for SignInRequest {
    fn example() -> Self {
        Self {
            token: "your-AUTH_TOKEN".to_owned(),
        }
    }
}

/// Answer of `auth_session` (401 `unauthorized` for a wrong token).
#[derive(ApiResponse, Debug)]
pub enum SignInResponse {
    /// Signed in: the `agent_runtime_session` cookie (`HttpOnly; SameSite=Strict`)
    /// authenticates this browser's requests from now on.
    #[oai(status = 204)]
    SignedIn(#[oai(header = "Set-Cookie")] String),
}

/// Answer of `auth_status`.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct AuthStatus {
    /// Whether this request's cookie session (or bearer token) authenticates it.
    pub signed_in: bool,
}

/// Answer of `auth_logout`.
#[derive(ApiResponse, Debug)]
pub enum LogoutResponse {
    /// Signed out: the session is over and the browser drops its cookie.
    #[oai(status = 204)]
    SignedOut(#[oai(header = "Set-Cookie")] String),
}

#[OpenApi(tag = "Tag::Auth")]
impl SignInApi {
    /// Sign a page in: trade the token for a session cookie, which then authenticates like
    /// the bearer token (a page's `EventSource` cannot send headers).
    #[oai(path = "/auth/session", method = "post", operation_id = "auth_session")]
    async fn session(
        &self,
        req: &Request,
        sessions: Data<&Arc<CookieSessions>>,
        body: Json<SignInRequest>,
    ) -> Result<SignInResponse, ErrorResponse> {
        let valid = req
            .data::<AuthToken>()
            .is_some_and(|expected| token_matches(&body.0.token, &expected.0));
        if !valid {
            return Err(ErrorResponse::Unauthorized(Json(ApiError::new(
                "unauthorized",
                "not the service's token",
            ))));
        }
        let value = sessions.open();
        Ok(SignInResponse::SignedIn(sessions.set_cookie(&value)))
    }

    /// Whether this browser is signed in: a page asks before its first call, so a signed-out
    /// start is an answer, not a 401.
    #[oai(path = "/auth/session", method = "get", operation_id = "auth_status")]
    async fn status(
        &self,
        req: &Request,
        sessions: Data<&Arc<CookieSessions>>,
    ) -> Json<AuthStatus> {
        let by_token = bearer_of(req).is_some_and(|token| {
            req.data::<AuthToken>()
                .is_some_and(|expected| token_matches(token, &expected.0))
        });
        let by_cookie = cookie_of(req.headers()).is_some_and(|value| sessions.is_open(value));
        Json(AuthStatus {
            signed_in: by_token || by_cookie,
        })
    }

    /// Sign out: the session of this request's cookie ends on the server.
    #[oai(path = "/auth/logout", method = "post", operation_id = "auth_logout")]
    async fn logout(
        &self,
        _auth: Auth,
        req: &Request,
        sessions: Data<&Arc<CookieSessions>>,
    ) -> Result<LogoutResponse, ErrorResponse> {
        if let Some(value) = cookie_of(req.headers()) {
            sessions.close(value);
        }
        Ok(LogoutResponse::SignedOut(sessions.clear_cookie()))
    }
}
