//! The service's log as an operator reads it from a file: one access line per request
//! (method, route template, status, milliseconds, request id; never a token or an id from
//! the path), valid JSON lines with `LOG_FORMAT=json`, no colour codes in text mode.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::crash::Service;
use crate::docker_mode::binary_env;
use crate::support::TOKEN;

fn env(dir: &std::path::Path, format: &str) -> Vec<(String, String)> {
    let mut env = binary_env(dir, "/usr/bin:/bin".to_owned());
    env.push(("LOG_FORMAT".to_owned(), format.to_owned()));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_gets_one_json_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let service = Service::start(dir.path(), &env(dir.path(), "json"), &log);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", service.base());
    let anonymous = client.get(url("/api/presets/list")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = service.get("/api/presets/ghost/get").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = service
        .post(
            "/api/presets/create",
            json!({"preset_id": "Bad Id", "name": "x", "model": {"name": "test:echo"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let traced = client
        .get(url("/api/health"))
        .header("X-Request-Id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "req-42");
    let _ = client
        .get(url("/nothing/here?token=secret"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        assert!(
            line.matches("\"message\":").count() <= 1,
            "a key twice: {line}"
        );
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<(&str, &str, u64)> = lines
        .iter()
        .filter(|l| l["target"] == "access")
        .map(|l| {
            let f = &l["fields"];
            assert!(f["ms"].as_f64().is_some(), "{l}");
            assert!(!f["request_id"].as_str().unwrap().is_empty(), "{l}");
            (
                f["method"].as_str().unwrap(),
                f["route"].as_str().unwrap(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        access,
        [
            ("GET", "/api/presets/list", 401),
            ("GET", "/api/presets/{preset_id}/get", 404),
            ("POST", "/api/presets/create", 422),
            ("GET", "/api/health", 200),
            ("GET", "(unmatched)", 404),
        ]
    );
    assert!(
        text.contains("\"request_id\":\"req-42\""),
        "the caller's id is kept"
    );
    assert!(
        !text.contains(TOKEN) && !text.contains("secret"),
        "no token, no query"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_log_in_a_file_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let service = Service::start(dir.path(), &env(dir.path(), "text"), &log);
    let (status, _) = service.get("/api/presets/list").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("route=/api/presets/list"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
}
