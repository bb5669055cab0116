//! Browsers (spec 06): cross-origin pages on a `CORS_ORIGINS` origin, a cookie session for
//! same-origin pages (sign in with the token, sign out on the server), and the published
//! document served without credentials.

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::support::{MockApp, TOKEN, TestApp, text_input};

const PAGE: &str = "https://chat.lan:8443";

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_gets_preflights_and_credentialed_answers() {
    let app = TestApp::with_vars(&[("CORS_ORIGINS", PAGE)]).await;
    let url = format!("{}/api/conversations/run/stream", app.base);
    let preflight = |origin: &str| {
        app.client
            .request(Method::OPTIONS, &url)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type, last-event-id, idempotency-key",
            )
            .send()
    };
    let resp = preflight(PAGE).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let h = resp.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], PAGE);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    for name in [
        "authorization",
        "content-type",
        "last-event-id",
        "idempotency-key",
    ] {
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains(name), "{name} in {allowed}");
    }

    // Another origin's preflight is not answered as CORS (the browser then refuses).
    let other = preflight("https://evil.lan").await.unwrap();
    assert!(
        other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    // Answers to the allowed page carry the headers, errors included.
    let listed = app
        .req(Method::GET, "/api/presets/list")
        .header(header::ORIGIN, PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PAGE);
    let refused = app
        .client
        .get(format!("{}/api/presets/list", app.base))
        .header(header::ORIGIN, PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], PAGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cors_origins_no_page_is_allowed() {
    let app = TestApp::sqlite().await;
    let resp = app
        .client
        .request(Method::OPTIONS, format!("{}/api/presets/list", app.base))
        .header(header::ORIGIN, PAGE)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert_ne!(resp.status(), StatusCode::NO_CONTENT);
}

/// Signs in and returns the cookie pair (`name=value`).
async fn sign_in(app: &TestApp, token: &str) -> (StatusCode, Option<String>) {
    let resp = app
        .client
        .post(format!("{}/api/auth/session", app.base))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), cookie)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_session_authenticates_until_signed_out() {
    let Some(app) = MockApp::start(crate::support::Backend::Local, &[]).await else {
        return;
    };
    let (status, cookie) = sign_in(&app, "not-the-token-at-all").await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));

    let (status, set_cookie) = sign_in(&app, TOKEN).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let set_cookie = set_cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let pair = set_cookie.split(';').next().unwrap().to_owned();

    // The cookie works like the token, for JSON and for a streamed run.
    let get = |path: &str, cookie: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header(header::COOKIE, cookie.to_owned())
            .send()
    };
    assert_eq!(
        get("/api/presets/list", &pair).await.unwrap().status(),
        StatusCode::OK
    );
    // A page asks whether it is signed in without provoking a 401.
    let signed_in = |cookie: Option<&str>| {
        let mut req = app.client.get(format!("{}/api/auth/session", app.base));
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie.to_owned());
        }
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<serde_json::Value>().await.unwrap()["signed_in"].clone()
        }
    };
    assert_eq!(signed_in(Some(&pair)).await, json!(true));
    assert_eq!(signed_in(None).await, json!(false));
    app.mock.push(mock_llm::Script::text("Hi from a page.", 2));
    let stream = app
        .client
        .post(format!("{}/api/conversations/run/stream", app.base))
        .header(header::COOKIE, pair.clone())
        .json(&json!({"preset_id": "mock", "input": text_input("hello")}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let body = stream.text().await.unwrap();
    assert!(body.starts_with("retry: 3000\n\n"), "{body}");
    assert!(body.contains("event: run_completed"), "{body}");

    // A forged or other cookie is not a session.
    let forged = format!("agent_runtime_session={}", "0".repeat(64));
    assert_eq!(
        get("/api/presets/list", &forged).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Signing out ends the session on the server: the same cookie value stops working.
    let out = app
        .client
        .post(format!("{}/api/auth/logout", app.base))
        .header(header::COOKIE, pair.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get("/api/presets/list", &pair).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(signed_in(Some(&pair)).await, json!(false));
    assert_eq!(signed_in(Some(&forged)).await, json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_is_secure_when_configured_and_sign_in_bodies_are_small() {
    let app = TestApp::with_vars(&[("COOKIE_SECURE", "true")]).await;
    let (status, cookie) = sign_in(&app, TOKEN).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(cookie.unwrap().contains("; Secure"));

    let huge = "x".repeat(64 * 1024);
    let resp = app
        .client
        .post(format!("{}/api/auth/session", app.base))
        .json(&json!({"token": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_document_needs_no_credentials() {
    let app = TestApp::sqlite().await;
    for path in ["/api/openapi.json", "/api/openapi.yaml"] {
        let resp = app.get_open(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("conversations_run_wait"),
            "{path}"
        );
    }
}
