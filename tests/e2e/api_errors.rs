//! Auth and the JSON error shape of every 4xx (spec 06).

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::support::{TOKEN, TestApp, preset_body, read};

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_token_and_reports_every_backend() {
    let app = TestApp::sqlite().await;
    let (status, body) = read(
        app.client
            .get(format!("{}/api/health", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let healthy = json!({"status": "ok", "database": "connected", "event_bus": "connected",
                         "state_store": "connected", "sandbox": crate::support::sandbox_status(),
                         "draining": false});
    assert_eq!(body, healthy);
    let open = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let live = open("/api/health/live").await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(
        live.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let ready = open("/api/health/ready").await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap(), healthy);

    assert_eq!(
        open("/api/info").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, info) = app.get("/api/info").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["database"], "sqlite");
    assert_eq!(info["event_bus"], "in_process");
    assert_eq!(info["state_store"], "local");
    assert!(!info["git_commit"].as_str().unwrap().is_empty(), "{info}");
    assert!(info["uptime_secs"].as_u64().is_some(), "{info}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_token_is_401_json() {
    let app = TestApp::sqlite().await;
    let url = format!("{}/api/presets/list", app.base);
    let cases = [
        app.client.get(&url),
        app.client.get(&url).bearer_auth("wrong"),
        app.client.get(&url).bearer_auth(format!("{TOKEN}x")),
        app.client
            .get(&url)
            .header(header::AUTHORIZATION, format!("Basic {TOKEN}")),
        app.client
            .post(format!("{}/api/presets/create", app.base))
            .json(&preset_body("sneaky")),
    ];
    for request in cases {
        let resp = request.send().await.unwrap();
        assert_eq!(
            resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
    }
    // nothing was created by the unauthenticated POST
    let (status, _) = app.get("/api/presets/sneaky/get").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_are_404_json_inside_and_outside_the_api() {
    let app = TestApp::sqlite().await;
    for path in ["/api/nope", "/api/presets/x/explode", "/nothing/here"] {
        let (status, body) = read(app.req(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, body) = app.get("/api/presets/does-not-exist/get").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["message"], "preset not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::sqlite().await;
    for (method, path, allow) in [
        (Method::DELETE, "/api/presets/list", "GET"),
        (Method::GET, "/api/presets/create", "POST"),
        (Method::PUT, "/api/presets/abc/update", "POST"),
    ] {
        let resp = app.req(method, path).send().await.unwrap();
        assert_eq!(
            resp.headers()
                .get(header::ALLOW)
                .map(|v| v.to_str().unwrap()),
            Some(allow),
            "{path}"
        );
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_are_400_invalid_body() {
    let app = TestApp::sqlite().await;
    let raw = |body: &'static str| {
        app.req(Method::POST, "/api/presets/create")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
    };
    for body in [
        "{not json",
        "",
        "[]",
        r#"{"preset_id": 5, "name": "x", "model": {"name": "test:echo"}}"#,
        r#"{"preset_id": "a", "name": "x"}"#,
        r#"{"preset_id": "a", "name": "x", "model": {"name": "test:echo"}, "environment": {"shell_mode": "podman"}}"#,
        r#"{"preset_id": "a", "name": "x", "model": {"name": "test:echo", "temperature": 9}}"#,
    ] {
        let (status, resp) = read(raw(body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["error"], "invalid_body", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_without_json_content_type_is_415() {
    let app = TestApp::sqlite().await;
    let body = preset_body("p").to_string();
    for content_type in [None, Some("text/plain")] {
        let mut req = app
            .req(Method::POST, "/api/presets/create")
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let (status, resp) = read(req.send().await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(resp["error"], "unsupported_media_type");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_are_413_with_or_without_content_length() {
    let app = TestApp::sqlite().await; // cap: 65536 bytes
    let mut big = preset_body("big");
    big["description"] = json!("x".repeat(70_000));
    let (status, body) = app.post("/api/presets/create", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");

    // chunked: no Content-Length, so the cap must hold while reading
    let bytes = big.to_string().into_bytes();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let stream = futures::stream::iter(chunks);
    let resp = app
        .req(Method::POST, "/api/presets/create")
        .header(header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");

    let (status, _) = app.get("/api/presets/big/get").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing half-written");
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_violations_are_422_with_every_field() {
    let app = TestApp::sqlite().await;
    let body = json!({
        "preset_id": "bad",
        "name": "Bad",
        "model": {"name": ""},
        "system_prompt": "{% for %}",
        "toolsets": [{"toolset_name": "teleport"}, {"toolset_name": "core", "exclude_tools": ["fly"]}],
        "environment": {"shell_mode": "docker"},
        "subagents": {"refs": [{"preset_id": "ghost", "name": "g"}]}
    });
    let (status, resp) = app.post("/api/presets/create", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resp["error"], "validation_failed");
    let fields: Vec<&str> = resp["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "model.name",
            "system_prompt",
            "toolsets[0].toolset_name",
            "toolsets[1].exclude_tools[0]",
            "environment.container_id",
            "subagents.refs[0].preset_id"
        ]
    );
    for f in resp["details"]["fields"].as_array().unwrap() {
        assert!(!f["message"].as_str().unwrap().is_empty());
    }
    let (status, _) = app.get("/api/presets/bad/get").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an invalid preset is not stored"
    );
}

/// A 500 names the request id its access-log line carries (the caller's `X-Request-Id`,
/// echoed in the response), so one id finds the failing request's lines: here a committed
/// session whose stored state was damaged.
#[tokio::test(flavor = "multi_thread")]
async fn a_500_names_the_request_id_of_its_access_line() {
    let app = crate::support::TestApp::with_vars(&[]).await;
    let (status, created) = app
        .post(
            "/api/presets/create",
            serde_json::json!({"preset_id": "echo", "name": "Echo", "model": {"name": "test:echo"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, first) = app
        .post(
            "/api/conversations/run/wait",
            serde_json::json!({"preset_id": "echo", "input": crate::support::text_input("hi")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let session = first["session_id"].as_str().unwrap();
    let state = app
        .dir
        .path()
        .join(format!("state/sessions/{session}/state.json"));
    std::fs::write(&state, b"{ damaged").unwrap();

    let resp = app
        .req(reqwest::Method::POST, "/api/conversations/run/wait")
        .header("X-Request-Id", "req-500-check")
        .json(&serde_json::json!({
            "conversation_id": first["conversation_id"],
            "input": crate::support::text_input("again"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.headers()["x-request-id"], "req-500-check");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "internal");
    assert_eq!(
        body["message"], "internal error (request id req-500-check)",
        "{body}"
    );
}
