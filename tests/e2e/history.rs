//! The mock model checks every request's history as a real provider would: a request
//! that breaks a rule is answered 400 in the provider's error format, naming the rule, so
//! a run that sends one fails with the rule in its error (and `MockApp` fails any test
//! whose requests broke one).

use mock_llm::{Invariant, MockLlm, Script};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, MockApp, assert_run_stream, shell_call, text_input};

/// POSTs `body` to the mock's `path`; returns status and body text.
async fn post(mock: &MockLlm, path: &str, body: &Value) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", mock.base_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Hand-built requests over HTTP: each broken history is refused in its provider's error
/// shape, naming the rule and the place, and recorded; a valid one is answered as scripted.
#[tokio::test]
async fn the_mock_refuses_broken_histories_in_each_providers_error_format() {
    let mock = MockLlm::start().await;
    mock.push(Script::text("kept for the valid request", 1));
    // OpenAI: results in the wrong order.
    let openai = json!({"model": "gpt-test", "stream": true, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "shell", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "shell", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "tool", "tool_call_id": "c1", "content": "one"}]});
    let (status, body) = post(&mock, "/v1/chat/completions", &openai).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "mock-llm: history invariant `answered_in_order` broken: \
                        the result for c2 at messages[2] comes before the result for c1",
            "type": "invalid_request_error", "param": null, "code": null}})
    );
    // Anthropic: an empty assistant message.
    let anthropic = json!({"model": "claude-test", "max_tokens": 10, "stream": true,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": []},
            {"role": "user", "content": [{"type": "text", "text": "hello?"}]}]});
    let (status, body) = post(&mock, "/v1/messages", &anthropic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "mock-llm: history invariant `assistant_not_empty` broken: \
                        messages[1] is an assistant message with no text and no tool calls"}})
    );

    // The script was not spent on the refused requests.
    let valid = json!({"model": "gpt-test", "stream": true,
                       "messages": [{"role": "user", "content": "go"}]});
    let (status, body) = post(&mock, "/v1/chat/completions", &valid).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("kept for the valid request"), "{body}");

    let broken: Vec<Invariant> = mock.violations().iter().map(|v| v.invariant).collect();
    assert_eq!(
        broken,
        [Invariant::AnsweredInOrder, Invariant::AssistantNotEmpty]
    );
    let recorded: Vec<bool> = mock
        .requests()
        .iter()
        .map(|r| r.violation.is_some())
        .collect();
    assert_eq!(recorded, [true, true, false]);
}

/// A run whose stored history lost a tool result (the state file edited behind the
/// service's back) sends that history on the next run: the mock refuses it and the run
/// fails with the rule named, instead of the test passing against a lenient model.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_sending_a_broken_history_fails_naming_the_rule() {
    let Some(mut app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    app.mock.push(shell_call("c1", "echo hi"));
    app.mock.push(Script::text("It said hi.", 1));
    let events = app.run_sse(app.new_run("say hi")).await.all().await;
    let session = events[0].data["session_id"].as_str().unwrap().to_owned();
    let conversation = events[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    assert_eq!(app.mock.violations(), []);

    let path = app
        .dir
        .path()
        .join(format!("state/sessions/{session}/state.json"));
    // The history is one stored segment of four messages; the state is rewritten with
    // it inline (the form earlier versions stored), minus the tool result.
    let mut state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let segments = state["history"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{state}");
    let sha = segments[0]["sha256"].as_str().unwrap();
    let segment = app
        .dir
        .path()
        .join(format!("state/history/{}/{sha}.json", &sha[..2]));
    let mut history: Value = serde_json::from_slice(&std::fs::read(segment).unwrap()).unwrap();
    let messages = history.as_array_mut().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    messages.remove(2);
    let object = state.as_object_mut().unwrap();
    object.remove("history");
    object.insert("message_history".into(), history);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    app.breaks_history_on_purpose();
    let events = app
        .run_sse(json!({"conversation_id": conversation, "input": text_input("again")}))
        .await
        .all()
        .await;
    let next = events[0].data["session_id"].as_str().unwrap();
    assert_run_stream(&events, next, 1);
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_failed"), "{terminal:?}");
    assert_eq!(terminal.payload()["code"], "model_error");
    let message = terminal.payload()["message"].as_str().unwrap();
    assert!(
        message.contains(
            "history invariant `answered_before_next_turn` broken: \
             tool call(s) c1 of messages[2] have no result before messages[3]"
        ),
        "{message}"
    );
    let broken: Vec<Invariant> = app.mock.violations().iter().map(|v| v.invariant).collect();
    assert_eq!(broken, [Invariant::AnsweredBeforeNextTurn]);
}
