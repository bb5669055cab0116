//! Failover: a preset's `model.fallbacks` answer when its model is down, announced by a
//! `model_fallback` warning and named in `run_summary.model`; after repeated outages the
//! endpoint's circuit breaker sends runs straight to the fallback, and after its cool-down
//! one trial request finds the model back.

use mock_llm::Script;
use serde_json::{Value, json};

use crate::model_controls::create_preset;
use crate::support::{Backend, MockApp, text_input};

const PRIMARY: &str = r#""model":"primary""#;
const BACKUP: &str = r#""model":"backup""#;

/// Streams a run on the preset; its `warning` messages and its terminal payload.
async fn run(app: &MockApp) -> (Vec<String>, Value) {
    let events = app
        .run_sse(json!({"preset_id": "resilient", "input": text_input("hello")}))
        .await
        .all()
        .await;
    let warnings = events
        .iter()
        .filter(|e| e.is("warning"))
        .map(|e| {
            assert_eq!(e.payload()["code"], "model_fallback");
            e.payload()["message"].as_str().unwrap().to_owned()
        })
        .collect();
    (warnings, events.last().unwrap().payload().clone())
}

fn asked(app: &MockApp, marker: &str) -> usize {
    app.mock
        .requests()
        .iter()
        .filter(|r| r.body.to_string().contains(marker))
        .count()
}

async fn failover_and_the_breaker(backend: Backend) {
    let vars = [
        ("MODEL_MAX_RETRIES", "0"),
        ("MODEL_BREAKER_FAILURES", "2"),
        ("MODEL_BREAKER_COOLDOWN_SECS", "1"),
    ];
    let Some(app) = MockApp::start(backend, &vars).await else {
        return;
    };
    create_preset(
        &app,
        json!({"preset_id": "resilient", "name": "Resilient",
               "model": {"name": "openai:primary", "fallbacks": ["anthropic:backup"]}}),
    )
    .await;

    // The primary answers 500: the fallback answers, twice; the second outage opens the
    // breaker.
    for round in 1..=2 {
        app.mock.push_when(PRIMARY, Script::server_error());
        app.mock.push_when(BACKUP, Script::text("from backup", 2));
        let (warnings, terminal) = run(&app).await;
        assert_eq!(terminal["status"], "committed", "{terminal}");
        assert_eq!(terminal["run_summary"]["model"], "anthropic:backup");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("openai:primary failed (provider error 500")
                && warnings[0].ends_with("trying anthropic:backup"),
            "{warnings:?}"
        );
        assert_eq!(asked(&app, PRIMARY), round);
    }

    // Open: the primary is not asked at all.
    app.mock.push_when(BACKUP, Script::text("from backup", 2));
    let (warnings, terminal) = run(&app).await;
    assert_eq!(terminal["run_summary"]["model"], "anthropic:backup");
    assert_eq!(
        asked(&app, PRIMARY),
        2,
        "the breaker kept the request from the primary"
    );
    assert!(
        warnings[0].contains("provider unavailable: openai failed 2 times in a row"),
        "{warnings:?}"
    );

    // After the cool-down the trial request reaches the primary, which is back.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.mock
        .push_when(PRIMARY, Script::text("primary is back", 2));
    let (warnings, terminal) = run(&app).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(terminal["run_summary"]["model"], "openai:primary");
    assert_eq!(asked(&app, PRIMARY), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_and_the_breaker_local() {
    failover_and_the_breaker(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_and_the_breaker_pg_redis() {
    failover_and_the_breaker(Backend::PgRedis).await;
}
