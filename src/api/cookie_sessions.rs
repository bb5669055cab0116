//! Cookie sessions (spec 06, browsers): a page's `EventSource` cannot send the bearer
//! header, so a same-origin page signs in once with the token (`auth_session`) and is then
//! authenticated by an `HttpOnly; SameSite=Strict` cookie. A session lives in this process:
//! signing out ends it here, so the cookie value stops working at once; a restart ends
//! every session (pages sign in again).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE_NAME: &str = "agent_runtime_session";

/// How long a session lasts after sign-in.
const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Sessions kept at once; signing in beyond it ends the oldest, so signing in in a loop
/// cannot grow memory.
const MAX_SESSIONS: usize = 1024;

/// The open sessions, by cookie value.
pub struct CookieSessions {
    open: Mutex<HashMap<String, Instant>>,
    secure: bool,
}

impl CookieSessions {
    /// `secure`: the cookie is sent over HTTPS only (`COOKIE_SECURE`).
    pub fn new(secure: bool) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            secure,
        }
    }

    /// Opens a session and returns its cookie value: 244 random bits (two UUIDv4s, drawn
    /// from the operating system's generator).
    pub fn open(&self) -> String {
        let value = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, expires| *expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(value, _)| value.clone())
        {
            open.remove(&oldest);
        }
        open.insert(value.clone(), now + LIFETIME);
        value
    }

    /// Whether `value` is the cookie of an open session.
    pub fn is_open(&self, value: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(value)
            .is_some_and(|expires| *expires > Instant::now())
    }

    /// Ends the session of `value` (nothing when there is none).
    pub fn close(&self, value: &str) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(value);
    }

    /// The `Set-Cookie` value that hands `value` to the browser.
    pub fn set_cookie(&self, value: &str) -> String {
        self.cookie(value, LIFETIME.as_secs())
    }

    /// The `Set-Cookie` value that makes the browser forget the cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        )
    }
}

/// The session cookie's value in a request's `Cookie` headers, if any.
pub fn cookie_of(headers: &poem::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_works_until_it_is_closed_and_values_are_unguessable() {
        let sessions = CookieSessions::new(false);
        let a = sessions.open();
        let b = sessions.open();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(sessions.is_open(&a) && sessions.is_open(&b));
        assert!(!sessions.is_open("") && !sessions.is_open(&a[..63]));
        sessions.close(&a);
        assert!(!sessions.is_open(&a) && sessions.is_open(&b));
    }

    #[test]
    fn signing_in_in_a_loop_keeps_at_most_the_cap() {
        let sessions = CookieSessions::new(false);
        let first = sessions.open();
        for _ in 0..MAX_SESSIONS {
            sessions.open();
        }
        assert!(!sessions.is_open(&first), "the oldest session made room");
        let open = sessions.open.lock().unwrap().len();
        assert_eq!(open, MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let plain = CookieSessions::new(false).set_cookie("v");
        assert_eq!(
            plain,
            "agent_runtime_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=604800"
        );
        assert!(
            CookieSessions::new(true)
                .set_cookie("v")
                .ends_with("; Secure")
        );
        assert!(
            CookieSessions::new(false)
                .clear_cookie()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = poem::http::HeaderMap::new();
        headers.append(
            "cookie",
            "a=1; agent_runtime_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_of(&headers), Some("xyz"));
        let mut other = poem::http::HeaderMap::new();
        other.append("cookie", "agent_runtime_sessionx=1".parse().unwrap());
        assert_eq!(cookie_of(&other), None);
    }
}
