//! The presets API (spec 06) over real HTTP.

use adapters::sql::{SqlSettings, SqlStorage, SqlTarget};
use ports::SessionRepo;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, conversation, preset_body, running_session};

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_database_gets_a_working_default_preset() {
    let app = TestApp::sqlite().await;
    let (status, body) = app.get("/api/presets/list").await;
    assert_eq!(status, StatusCode::OK);
    let presets = body["presets"].as_array().unwrap();
    assert_eq!(presets.len(), 1);
    assert_eq!(presets[0]["preset_id"], "default");
    assert_eq!(presets[0]["is_default"], true);
    assert_eq!(
        presets[0]["model"]["name"], "test:echo",
        "no provider key: a built-in model"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_uses_a_real_provider_when_its_key_is_present() {
    let app = TestApp::with_vars(&[("ANTHROPIC_API_KEY", "k")]).await;
    let (_, body) = app.get("/api/presets/default/get").await;
    assert_eq!(body["model"]["name"], "anthropic:claude-sonnet-4");
    let shown = body.to_string();
    assert!(!shown.contains("\"k\""), "presets hold no secrets");
}

#[tokio::test(flavor = "multi_thread")]
async fn presets_round_trip() {
    let app = TestApp::sqlite().await;
    let create = json!({
        "preset_id": "coder",
        "name": "Coder",
        "description": "writes code",
        "model": {"name": "openai:gpt-4o-mini", "context_window": 128000, "temperature": 0.2},
        "system_prompt": "You work in {{ cwd }}.",
        "toolsets": [{"toolset_name": "core", "exclude_tools": ["write"]}, {"toolset_name": "shell", "enabled": false}],
        "environment": {"default_path": "/srv/work", "allowed_paths": ["/srv/shared"]},
        "subagents": {"include_builtin": true, "refs": [{"preset_id": "default", "name": "helper", "instruction": "ask it"}]},
        "tool_config": {"require_approval": ["shell"]}
    });
    let (status, created) = app.post("/api/presets/create", create).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["preset_id"], "coder");
    assert_eq!(
        created["toolsets"],
        json!([
            {"toolset_name": "core", "enabled": true, "exclude_tools": ["write"]},
            {"toolset_name": "shell", "enabled": false, "exclude_tools": []}
        ])
    );
    assert_eq!(
        created["environment"],
        json!({
            "shell_mode": "local", "default_path": "/srv/work", "allowed_paths": ["/srv/shared"], "env_allow": [],
            "sandbox": {"mode": "workspace", "network": true}
        })
    );
    assert_eq!(
        created["subagents"]["refs"][0],
        json!({
            "preset_id": "default", "name": "helper", "description": "", "instruction": "ask it"
        })
    );
    assert_eq!(
        created["model"],
        json!({"name": "openai:gpt-4o-mini", "context_window": 128000, "temperature": 0.2,
            "prompt_cache": true, "fallbacks": []})
    );
    assert_eq!(created["is_default"], false);
    assert!(created.get("container_id").is_none());

    let (status, got) = app.get("/api/presets/coder/get").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    let (status, dup) = app.post("/api/presets/create", preset_body("coder")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["error"], "conflict");

    // partial update: only the given fields change; null clears the description
    let (status, updated) = app
        .post(
            "/api/presets/coder/update",
            json!({"name": "Coder 2", "description": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Coder 2");
    assert!(updated.get("description").is_none());
    assert_eq!(updated["model"], created["model"]);
    assert_eq!(updated["toolsets"], created["toolsets"]);
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(updated["updated_at"].as_str() >= created["updated_at"].as_str());

    let (status, bad) = app
        .post(
            "/api/presets/coder/update",
            json!({"model": {"name": "nope"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["details"]["fields"][0]["field"], "model.name");
    assert_eq!(
        app.get("/api/presets/coder/get").await.1["model"],
        created["model"],
        "refused update changed nothing"
    );

    let (status, missing) = app
        .post("/api/presets/ghost/update", json!({"name": "x"}))
        .await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let (_, list) = app.get("/api/presets/list").await;
    let ids: Vec<_> = list["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["preset_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["coder", "default"]);

    let (status, deleted) = app.post("/api/presets/coder/delete", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, json!({"preset_id": "coder", "deleted": true}));
    assert_eq!(
        app.get("/api/presets/coder/get").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/api/presets/coder/delete", json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_one_default_through_the_api() {
    let app = TestApp::sqlite().await;
    let mut body = preset_body("second");
    body["is_default"] = json!(true);
    assert_eq!(
        app.post("/api/presets/create", body).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/presets/default/get").await.1["is_default"],
        false
    );
    assert_eq!(
        app.post("/api/presets/default/update", json!({"is_default": true}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, list) = app.get("/api/presets/list").await;
    let defaults: Vec<_> = list["presets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["preset_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(defaults, vec!["default"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preset_in_use_cannot_be_deleted() {
    let app = TestApp::sqlite().await;
    assert_eq!(
        app.post("/api/presets/create", preset_body("busy")).await.0,
        StatusCode::OK
    );
    // A running session uses it (written through the real storage, as a run would).
    let db = format!("{}/runtime.db", app.dir.path().display());
    let storage = SqlStorage::connect(&SqlTarget::Sqlite { path: db }, &SqlSettings::default())
        .await
        .unwrap();
    storage
        .create_session(
            &running_session("s1", "s1", Some("busy")),
            Some(conversation("s1")),
        )
        .await
        .unwrap();

    let (status, body) = app.post("/api/presets/busy/delete", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "preset_in_use");
    assert_eq!(
        app.get("/api/presets/busy/get").await.0,
        StatusCode::OK,
        "still there"
    );
}
