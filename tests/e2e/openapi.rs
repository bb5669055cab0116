//! The published OpenAPI document: checked in, served, and shaped for generated clients.

use std::path::PathBuf;

use agent_runtime::api;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

fn checked_in(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("openapi")
        .join(name)
}

/// Fails when `openapi/` differs from what the code generates. `UPDATE_OPENAPI=1` rewrites it.
#[test]
fn checked_in_document_is_fresh() {
    for (name, generated) in [
        ("openapi.json", api::spec_json()),
        ("openapi.yaml", api::spec_yaml()),
    ] {
        let path = checked_in(name);
        if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::write(&path, format!("{generated}\n")).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk.trim_end() == generated.trim_end(),
            "{name} is stale: run `UPDATE_OPENAPI=1 cargo test --test e2e openapi` and commit it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn served_documents_equal_the_checked_in_ones() {
    let app = TestApp::sqlite().await;
    let (status, served) = app.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(checked_in("openapi.json")).unwrap())
            .unwrap();
    assert!(
        served == file,
        "/api/openapi.json differs from openapi/openapi.json"
    );
    let yaml = app
        .req(Method::GET, "/api/openapi.yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.status(), StatusCode::OK);
    assert_eq!(
        yaml.text().await.unwrap().trim_end(),
        std::fs::read_to_string(checked_in("openapi.yaml"))
            .unwrap()
            .trim_end()
    );
    let docs = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI at /docs"
    );
}

#[test]
fn operations_follow_the_client_conventions() {
    let spec: Value = serde_json::from_str(&api::spec_json()).unwrap();
    assert_eq!(spec["servers"][0]["url"], "/api");
    // Go and Java map the undefined uint formats to 32-bit ints.
    let text = spec.to_string();
    assert!(
        !text.contains("\"uint"),
        "unsigned formats are published as int64/int32"
    );
    assert!(
        text.contains("\"format\":\"int64\",\"minimum\":0"),
        "{text}"
    );
    // allOf is only acceptable as the shape of a discriminated union's variant
    // (`Union_Variant`: the tag plus a $ref); anywhere else it means a documented $ref
    // field, which generated clients drop.
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                !property.to_string().contains("allOf"),
                "{name}.{field}: a documented $ref field became allOf, which generated clients drop"
            );
        }
        if schema.get("allOf").is_some() {
            let (union, _) = name
                .split_once('_')
                .unwrap_or_else(|| panic!("{name}: allOf outside a union variant"));
            let mapping = &spec["components"]["schemas"][union]["discriminator"]["mapping"];
            assert!(
                mapping.to_string().contains(&format!("/{name}\"")),
                "{name}: allOf but not a variant of {union}"
            );
        }
    }
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 6);
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                !op.to_string().contains("allOf"),
                "{method} {path}: allOf breaks generated clients"
            );
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            let tags = op["tags"].as_array().unwrap();
            assert_eq!(tags.len(), 1, "{id}: one tag");
            let tag = tags[0].as_str().unwrap();
            assert!(id.starts_with(&format!("{tag}_")), "{id} is <tag>_<action>");
            let responses = op["responses"].as_object().unwrap();
            // Health (but `health_info`) and sign-in are open; every other operation needs
            // credentials.
            if id == "auth_session" {
                assert_eq!(op["security"], json!([]), "sign-in needs no credentials");
                assert!(responses.contains_key("401") && responses.contains_key("204"));
            } else if id == "auth_status" {
                assert_eq!(op["security"], json!([]), "a signed-out page may ask");
                assert!(responses.contains_key("200"));
            } else if !matches!(id, "health_get" | "health_live" | "health_ready") {
                assert!(
                    op["security"].as_array().is_some_and(|s| !s.is_empty()),
                    "{id} needs auth"
                );
                for status in ["400", "401", "404", "422", "500"] {
                    assert!(responses.contains_key(status), "{id} declares {status}");
                }
                let err = &responses["401"]["content"]["application/json; charset=utf-8"]["schema"]
                    ["$ref"];
                assert_eq!(err, "#/components/schemas/ApiError", "{id}");
            } else {
                assert_eq!(op["security"], json!([]), "health needs no auth");
                // Liveness answers while the process does; the others say 503 when down.
                assert_eq!(responses.contains_key("503"), id != "health_live", "{id}");
            }
        }
    }
}

/// The example of a request body's schema.
fn body_example<'a>(spec: &'a Value, op: &Value) -> Option<&'a Value> {
    let content = op["requestBody"]["content"].as_object()?;
    let schema = &content.values().next()?["schema"]["$ref"];
    let name = schema.as_str()?.rsplit('/').next()?;
    spec["components"]["schemas"][name].get("example")
}

/// Every request body has an example (Swagger UI's "try it out" starts from it), and the
/// run operations' examples work as they are against a fresh start.
#[tokio::test(flavor = "multi_thread")]
async fn request_examples_exist_and_the_run_examples_work() {
    let spec: Value = serde_json::from_str(&api::spec_json()).unwrap();
    let mut examples = std::collections::BTreeMap::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for op in ops.as_object().unwrap().values() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let id = op["operationId"].as_str().unwrap();
            let example = body_example(&spec, op).unwrap_or_else(|| panic!("{id}: no example"));
            examples.insert(id.to_owned(), (path.clone(), example.clone()));
        }
    }
    let app = TestApp::sqlite().await;
    for (id, expected) in [
        ("conversations_run", StatusCode::ACCEPTED),
        ("conversations_run_wait", StatusCode::OK),
        ("sessions_execute", StatusCode::ACCEPTED),
        ("sessions_execute_wait", StatusCode::OK),
        ("presets_create", StatusCode::OK),
    ] {
        let (path, example) = &examples[id];
        let (status, body) = app.post(&format!("/api{path}"), example.clone()).await;
        assert_eq!(status, expected, "{id} with its example: {body}");
        if id.ends_with("_wait") {
            assert_eq!(body["status"], "committed", "{id}: {body}");
        }
    }
    let (path, example) = &examples["conversations_run_stream"];
    let resp = app
        .req(Method::POST, &format!("/api{path}"))
        .json(example)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("event: run_completed"));
}
