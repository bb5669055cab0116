//! Conversation metadata (set by runs, replaced by update, filtered by
//! `conversations/list?metadata.<key>=<value>`) and titles (the first user text cut at 60
//! characters; with `TITLE_MODEL`, the title model's answer from the first exchange).

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::model_controls::run_wait;
use crate::support::{Backend, MockApp, eventually, on_both_backends, text_input};

on_both_backends!(
    metadata_is_set_merged_replaced_and_filtered,
    titles_without_a_title_model
);

async fn conversation(app: &MockApp, id: &Value) -> Value {
    let (status, body) = app
        .get(&format!("/api/conversations/{}/get", id.as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The ids `conversations/list?<query>` returns.
async fn listed(app: &MockApp, query: &str) -> Vec<String> {
    let (status, body) = app.get(&format!("/api/conversations/list?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn metadata_is_set_merged_replaced_and_filtered(app: MockApp) {
    let first = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("hi"),
               "metadata": {"channel": "C1", "im.user:id": "u-7"}}),
    )
    .await;
    let second = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("hi"), "metadata": {"channel": "C 2/é"}}),
    )
    .await;
    let (one, two) = (&first["conversation_id"], &second["conversation_id"]);
    assert_eq!(
        conversation(&app, one).await["metadata"],
        json!({"channel": "C1", "im.user:id": "u-7"})
    );
    assert_eq!(
        listed(&app, "metadata.channel=C1").await,
        [one.as_str().unwrap()]
    );
    assert_eq!(
        listed(&app, "metadata.channel=C%202%2F%C3%A9").await,
        [two.as_str().unwrap()]
    );
    assert_eq!(
        listed(&app, "metadata.channel=C1&metadata.im.user:id=u-7").await,
        [one.as_str().unwrap()]
    );
    assert!(
        listed(&app, "metadata.channel=C1&metadata.im.user:id=other")
            .await
            .is_empty()
    );
    assert_eq!(listed(&app, "limit=5").await.len(), 2, "no filter: both");

    // A continuing run adds its pairs; an update replaces the whole map.
    run_wait(
        &app,
        json!({"conversation_id": two, "input": text_input("again"), "metadata": {"thread": "t1"}}),
    )
    .await;
    assert_eq!(
        conversation(&app, two).await["metadata"],
        json!({"channel": "C 2/é", "thread": "t1"})
    );
    let (status, updated) = app
        .post(
            &format!("/api/conversations/{}/update", two.as_str().unwrap()),
            json!({"metadata": {"channel": "C3"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"], json!({"channel": "C3"}));
    assert_eq!(
        listed(&app, "metadata.channel=C3").await,
        [two.as_str().unwrap()]
    );

    // Hostile metadata is refused and starts nothing.
    for bad in [
        json!({"bad key": "x"}),
        json!({"k": "v".repeat(513)}),
        Value::Object((0..33).map(|i| (format!("k{i}"), json!("v"))).collect()),
    ] {
        let (status, body) = app
            .post(
                "/api/conversations/run",
                json!({"preset_id": "mock", "input": text_input("x"), "metadata": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // Values must be strings on the wire: `false` is not read as "false".
    let (status, body) = app
        .post(
            "/api/conversations/run",
            json!({"preset_id": "mock", "input": text_input("x"), "metadata": {"k": false}}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = app
        .post(
            &format!("/api/conversations/{}/update", two.as_str().unwrap()),
            json!({"metadata": {"k": 1}}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_eq!(
        conversation(&app, two).await["metadata"],
        json!({"channel": "C3"})
    );
    let (status, body) = app.get("/api/conversations/list?metadata.a%20b=x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(listed(&app, "limit=100").await.len(), 2);
}

async fn titles_without_a_title_model(app: MockApp) {
    let long = format!("Plan a trip to Lyon {}", "with many stops ".repeat(10));
    let result = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input(&long)}),
    )
    .await;
    let title = conversation(&app, &result["conversation_id"]).await["title"].clone();
    let title = title.as_str().unwrap();
    assert_eq!(title.chars().count(), 60, "{title}");
    assert!(title.starts_with("Plan a trip to Lyon with many stops") && title.ends_with('…'));
    // An edited title stays.
    let (status, body) = app
        .post(
            &format!(
                "/api/conversations/{}/update",
                result["conversation_id"].as_str().unwrap()
            ),
            json!({"title": "Mine"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["title"], "Mine");
}

/// With `TITLE_MODEL`, the title model's answer replaces the fallback after the first
/// exchange; a conversation whose title was edited first keeps it.
async fn titles_from_the_title_model(backend: Backend) {
    let Some(app) = MockApp::start(backend, &[("TITLE_MODEL", "openai:title-mini")]).await else {
        return;
    };
    app.mock.push_when(
        "You name conversations",
        Script::text("\"Trip to Lyon.\"\n", 2),
    );
    app.mock.push(Script::text("Sure, let's plan.", 2));
    let result = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("Plan a trip to Lyon")}),
    )
    .await;
    let id = result["conversation_id"].clone();
    let title = eventually("the model's title", || {
        let (app, id) = (&app, &id);
        async move {
            let title = conversation(app, id).await["title"].clone();
            (title != "Plan a trip to Lyon").then_some(title)
        }
    })
    .await;
    assert_eq!(title, "Trip to Lyon");
    let asked = app
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body.to_string().contains("You name conversations"))
        .expect("the title request");
    assert_eq!(asked.body["model"], "title-mini");
    let prompt = asked.body["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("User: Plan a trip to Lyon")
            && prompt.contains("Assistant: Sure, let's plan."),
        "{prompt}"
    );
    // A second run of the conversation asks for no title.
    run_wait(
        &app,
        json!({"conversation_id": id, "input": text_input("more")}),
    )
    .await;
    let titled = app
        .mock
        .requests()
        .iter()
        .filter(|r| r.body.to_string().contains("You name conversations"))
        .count();
    assert_eq!(titled, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn titles_from_the_title_model_local() {
    titles_from_the_title_model(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn titles_from_the_title_model_pg_redis() {
    titles_from_the_title_model(Backend::PgRedis).await;
}
