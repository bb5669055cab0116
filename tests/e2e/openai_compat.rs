//! The OpenAI-compatible `/v1` surface over real HTTP: models, whole and streamed
//! completions, conversation continuity (a chat resent with one more message continues
//! its conversation; an edited earlier message forks), images, approval, and OpenAI's
//! error shape. The official SDKs run against the binary in scripts/openai/.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{MockApp, TestApp};

fn chat(model: &str, messages: Value) -> Value {
    json!({"model": model, "messages": messages})
}

async fn complete(app: &TestApp, body: Value) -> (StatusCode, Value, Option<String>) {
    let resp = app
        .req(Method::POST, "/v1/chat/completions")
        .json(&body)
        .send()
        .await
        .unwrap();
    let conversation = resp
        .headers()
        .get("x-conversation-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status();
    (status, resp.json().await.unwrap(), conversation)
}

/// The `data:` payloads of a streamed answer, `[DONE]` included.
async fn stream(app: &TestApp, body: Value) -> Vec<String> {
    let text = app
        .req(Method::POST, "/v1/chat/completions")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn answer_of(body: &Value) -> &str {
    body["choices"][0]["message"]["content"].as_str().unwrap()
}

async fn sessions_of(app: &TestApp, conversation: &str) -> usize {
    app.session_ids(conversation).await.len()
}

async fn conversations(app: &TestApp) -> usize {
    let (_, listed) = app.get("/api/conversations/list?limit=100").await;
    listed["conversations"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn models_are_the_presets_and_errors_take_openais_shape() {
    let app = TestApp::sqlite().await;
    let (status, _) = app
        .post(
            "/api/presets/create",
            json!({"preset_id": "helper", "name": "Helper", "model": {"name": "test:echo"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, models) = app.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["default", "helper"]);
    assert_eq!(models["data"][0]["object"], "model");

    let anonymous = reqwest::Client::new()
        .get(format!("{}/v1/models", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, body, _) = complete(
        &app,
        chat("ghost", json!([{"role": "user", "content": "hi"}])),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    let (status, body, _) = complete(&app, json!({"model": "helper"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    let (status, body, _) = complete(
        &app,
        chat("helper", json!([{"role": "assistant", "content": "hi"}])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("user"),
        "{body}"
    );
    let resp = app.req(Method::GET, "/v1/nothing").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
}

/// Three turns resent whole continue one conversation; editing the first message forks;
/// an explicit conversation id wins over the chat.
#[tokio::test(flavor = "multi_thread")]
async fn a_resent_chat_continues_its_conversation_and_an_edit_forks() {
    let app = TestApp::sqlite().await;
    let first =
        json!([{"role": "system", "content": "ignored"}, {"role": "user", "content": "one"}]);
    let (status, body, conversation) = complete(&app, chat("default", first)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(answer_of(&body), "echo: one");
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
    let conversation = conversation.unwrap();

    let second = json!([
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"}]);
    let (_, body, again) = complete(&app, chat("default", second)).await;
    assert_eq!(answer_of(&body), "echo: two");
    assert_eq!(again.as_deref(), Some(conversation.as_str()));

    let third = json!([
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"}, {"role": "assistant", "content": "echo: two"},
        {"role": "user", "content": "three"}]);
    let frames = stream(
        &app,
        json!({"model": "default", "messages": third, "stream": true,
                                      "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "echo: three");
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "stop");
    assert!(finish.is_some(), "{frames:?}");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(sessions_of(&app, &conversation).await, 3);
    assert_eq!(conversations(&app).await, 1);

    // The client edits the first answer's question: the chat before it matches nothing
    // newer than the first session, so a new conversation forks from it.
    let edited = json!([
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two, edited"}]);
    let (_, body, forked) = complete(&app, chat("default", edited)).await;
    assert_eq!(answer_of(&body), "echo: two, edited");
    let forked = forked.unwrap();
    assert_ne!(forked, conversation);
    assert_eq!(conversations(&app).await, 2);
    assert_eq!(
        sessions_of(&app, &conversation).await,
        3,
        "the original is untouched"
    );

    // A chat the service never saw starts a conversation with that history.
    let unseen = json!([
        {"role": "user", "content": "from elsewhere"}, {"role": "assistant", "content": "sure"},
        {"role": "user", "content": "go on"}]);
    let (_, _, fresh) = complete(&app, chat("default", unseen)).await;
    assert_eq!(conversations(&app).await, 3);

    // The header names the conversation, whatever the chat says.
    let resp = app
        .req(Method::POST, "/v1/chat/completions")
        .header("X-Conversation-Id", &conversation)
        .json(&chat(
            "default",
            json!([{"role": "user", "content": "four"}]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sessions_of(&app, &conversation).await, 4);
    assert_ne!(fresh.unwrap(), conversation);

    // Archived on the service, the chat goes on in a new conversation holding the
    // client's transcript; naming the archived one is a 409.
    app.archive(&conversation).await;
    let resent = json!([
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"}, {"role": "assistant", "content": "echo: two"},
        {"role": "user", "content": "three"}, {"role": "assistant", "content": "echo: three"},
        {"role": "user", "content": "after archiving"}]);
    let (status, body, moved) = complete(&app, chat("default", resent)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(answer_of(&body), "echo: after archiving");
    let moved = moved.unwrap();
    assert_ne!(moved, conversation);
    let (_, turns) = app.get(&format!("/api/conversations/{moved}/turns")).await;
    assert_eq!(turns["turns"].as_array().unwrap().len(), 1, "{turns}");
    let resp = app
        .req(Method::POST, "/v1/chat/completions")
        .header("X-Conversation-Id", &conversation)
        .json(&chat(
            "default",
            json!([{"role": "user", "content": "five"}]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let error: Value = resp.json().await.unwrap();
    assert_eq!(error["error"]["code"], "conversation_archived", "{error}");
}

/// Images reach the model; tool activity is reasoning when asked for; a call waiting for
/// approval is said in the answer.
async fn images_tools_and_approval(app: MockApp) {
    app.mock.push(mock_llm::Script::text("a red dot", 1));
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let image = json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]);
    let (status, body, _) = complete(&app, chat("mock", image)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(answer_of(&body), "a red dot");
    let seen = app.mock.requests().pop().unwrap().body.to_string();
    assert!(seen.contains(png), "the image reaches the model");

    let (status, body) = app
        .post(
            "/api/presets/mock/update",
            json!({"tool_config": {"require_approval": ["shell"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.mock.push(crate::support::shell_call("c1", "echo hi"));
    let resp = app
        .req(Method::POST, "/v1/chat/completions")
        .header("x-show-tools", "true")
        .json(&chat(
            "mock",
            json!([{"role": "user", "content": "run it"}]),
        ))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let answer = answer_of(&body);
    assert!(answer.contains("Waiting for approval: shell"), "{body}");
    let reasoning = body["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap();
    assert!(reasoning.contains("calls shell"), "{body}");

    // The preset's setting shows the activity without the header.
    let (status, body) = app
        .post(
            "/api/presets/mock/update",
            json!({"tool_config": {"require_approval": ["shell"], "show_activity": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.mock.push(crate::support::shell_call("c2", "echo hi"));
    let (_, body, _) = complete(
        &app,
        chat("mock", json!([{"role": "user", "content": "again"}])),
    )
    .await;
    let reasoning = body["choices"][0]["message"]["reasoning_content"].as_str();
    assert!(
        reasoning.is_some_and(|r| r.contains("calls shell")),
        "{body}"
    );
}

crate::support::on_both_backends!(images_tools_and_approval);
