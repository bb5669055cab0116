//! Human in the loop and external tools (spec 05) over real HTTP with the mock LLM: calls
//! that need approval, and calls to tools the caller runs itself, end the run awaiting
//! them; the next run approves, denies or supplies values, and whatever it leaves out is
//! answered automatically, so the model always sees one result per call.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    MOCK_PRESET, MockApp, SseEvent, SseStream, assert_run_stream, dialogue, shell_call, text_input,
    types,
};

/// Preset `guarded`: the shell toolset, whose `shell` needs a human's approval.
async fn guarded(app: &MockApp) {
    let (status, body) = app
        .post(
            "/api/presets/create",
            json!({
                "preset_id": "guarded",
                "name": "Guarded",
                "model": {"name": "openai:gpt-test"},
                "system_prompt": "You are careful.",
                "toolsets": [{"toolset_name": "shell"}],
                "environment": {"default_path": app.work.display().to_string()},
                "tool_config": {"require_approval": ["shell"]}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn run_all(app: &MockApp, body: Value) -> Vec<SseEvent> {
    run_at(app, "/api/conversations/run/stream", body).await
}

/// An sse run started at `path`, to its end, checked as one run's stream.
async fn run_at(app: &MockApp, path: &str, body: Value) -> Vec<SseEvent> {
    let events = SseStream::new(app.open(path, Some(&body), None).await)
        .await
        .all()
        .await;
    let session = events[0].data["session_id"].as_str().unwrap();
    assert_run_stream(&events, session, 1);
    events
}

fn ids(events: &[SseEvent]) -> (String, String) {
    (
        events[0].data["session_id"].as_str().unwrap().to_owned(),
        events[0].payload()["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// The `tool_call_result` payloads of a run, by call id.
fn results(events: &[SseEvent]) -> Vec<(String, String, bool)> {
    events
        .iter()
        .filter(|e| e.is("tool_call_result"))
        .map(|e| {
            let p = e.payload();
            (
                p["tool_call_id"].as_str().unwrap().to_owned(),
                p["output"].as_str().unwrap().to_owned(),
                p["is_error"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The last model request's messages after the system prompt.
fn last_dialogue(app: &MockApp) -> Vec<(String, String)> {
    dialogue(&app.mock.requests().pop().unwrap())
}

/// Approval: the call waits (nothing runs, the session and the terminal event list it);
/// bad resolutions are 422 and change nothing; approving runs it in the next run, which
/// shows it whole, and the model sees its output.
async fn approve(app: MockApp) {
    guarded(&app).await;
    let command = "echo approved > proof.txt && echo wrote the proof";
    app.mock.push(shell_call("c1", command));
    let events = run_all(
        &app,
        json!({"preset_id": "guarded", "input": text_input("make a proof")}),
    )
    .await;
    let (first, conversation) = ids(&events);
    let terminal = events.last().unwrap().payload().clone();
    let pending = json!([{"tool_call_id": "c1", "tool_name": "shell",
                          "args": {"command": command}, "kind": "approval"}]);
    assert_eq!(terminal["status"], "awaiting_tool_results", "{terminal}");
    assert_eq!(terminal["stop_reason"], "awaiting_tool_results");
    assert_eq!(terminal["pending_tool_calls"], pending);
    assert!(results(&events).is_empty(), "{}", types(&events));
    assert!(!app.work.join("proof.txt").exists(), "nothing ran");
    let stored = app.session(&first).await;
    assert_eq!(stored["status"], "awaiting_tool_results");
    assert_eq!(stored["pending_tool_calls"], pending);
    let call = stored["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "tool_call")
        .unwrap()
        .clone();
    assert_eq!(call["status"], "pending", "{call}");
    let (_, view) = app
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert_eq!(view["latest_session"]["status"], "awaiting_tool_results");

    // Refused before anything starts: unknown id, wrong kind, nothing to do.
    let requests_before = app.mock.requests().len();
    for (body, field) in [
        (
            json!({"conversation_id": conversation,
                   "user_interactions": [{"tool_call_id": "nope", "approved": true}]}),
            "user_interactions[0].tool_call_id",
        ),
        (
            json!({"conversation_id": conversation,
                   "tool_results": [{"tool_call_id": "c1", "output": "x"}]}),
            "tool_results[0].tool_call_id",
        ),
        (json!({"conversation_id": conversation}), "input"),
    ] {
        let (status, error) = app.post("/api/conversations/run", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"], "validation_failed");
        assert_eq!(error["details"]["fields"][0]["field"], field, "{error}");
    }
    assert_eq!(app.session_ids(&conversation).await, vec![first.clone()]);
    assert_eq!(app.mock.requests().len(), requests_before);

    app.mock.push(Script::text("The proof is written.", 2));
    let events = run_all(
        &app,
        json!({"conversation_id": conversation,
               "user_interactions": [{"tool_call_id": "c1", "approved": true}]}),
    )
    .await;
    let (second, _) = ids(&events);
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    let got = results(&events);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "c1");
    assert!(got[0].1.contains("wrote the proof") && !got[0].2, "{got:?}");
    assert_eq!(
        std::fs::read_to_string(app.work.join("proof.txt")).unwrap(),
        "approved\n"
    );
    let seen = last_dialogue(&app);
    assert_eq!(seen[0], ("user".to_owned(), "make a proof".to_owned()));
    let (role, output) = seen.last().unwrap();
    assert_eq!(role, "tool");
    assert!(output.contains("wrote the proof"), "{output}");
    let record = app.session(&second).await;
    assert_eq!(record["parent_session_id"], first.as_str());
    assert!(record.get("pending_tool_calls").is_none(), "{record}");
    let shown: Vec<&Value> = record["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "tool_call")
        .collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["args"], json!({"command": command}).to_string());
    assert_eq!(shown[0]["status"], "success");
}

/// A denial returns its reason to the model; a call the next run leaves out is denied
/// automatically; neither runs.
async fn deny_and_auto_deny(app: MockApp) {
    guarded(&app).await;
    app.mock.push(
        Script::new()
            .tool_call(0, "c1", "shell", &[r#"{"command":"touch a.txt"}"#])
            .tool_call(1, "c2", "shell", &[r#"{"command":"touch b.txt"}"#]),
    );
    let events = run_all(
        &app,
        json!({"preset_id": "guarded", "input": text_input("touch both")}),
    )
    .await;
    let (_, conversation) = ids(&events);
    let pending = &events.last().unwrap().payload()["pending_tool_calls"];
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");

    app.mock.push(Script::text("Skipped.", 1));
    let events = run_all(
        &app,
        json!({"conversation_id": conversation,
               "user_interactions": [{"tool_call_id": "c1", "approved": false,
                                      "reason": "not in prod"}],
               "input": text_input("skip it")}),
    )
    .await;
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    let got = results(&events);
    assert_eq!(
        got[0],
        (
            "c1".into(),
            "The user denied this call: not in prod".into(),
            true
        )
    );
    assert_eq!(got[1].0, "c2");
    assert!(
        got[1].1.contains("automatically denied") && got[1].2,
        "{got:?}"
    );
    assert!(!app.work.join("a.txt").exists() && !app.work.join("b.txt").exists());
    let seen = last_dialogue(&app);
    let n = seen.len();
    assert_eq!(
        seen[n - 3],
        (
            "tool".to_owned(),
            "The user denied this call: not in prod".to_owned()
        )
    );
    assert!(seen[n - 2].1.contains("automatically denied"), "{seen:?}");
    assert_eq!(seen[n - 1], ("user".to_owned(), "skip it".to_owned()));
}

/// External tools: offered for the run, their calls wait for the caller, whose value
/// (through sessions/execute) is what the model sees. Bad declarations are 422.
async fn external_tool(app: MockApp) {
    guarded(&app).await;
    let weather = json!({"name": "lookup_weather", "description": "Weather by city",
                         "parameters": {"type": "object",
                                        "properties": {"city": {"type": "string"}}}});
    app.mock
        .push(Script::new().tool_call(0, "x1", "lookup_weather", &[r#"{"city":"Oslo"}"#]));
    let events = run_all(
        &app,
        json!({"preset_id": "guarded", "input": text_input("weather in Oslo?"),
               "external_tools": [weather]}),
    )
    .await;
    let (first, _) = ids(&events);
    let offered = app.mock.requests().pop().unwrap().body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "lookup_weather")
        .cloned()
        .expect("the external tool is offered");
    assert_eq!(offered["function"]["description"], "Weather by city");
    assert_eq!(
        offered["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(
        events.last().unwrap().payload()["pending_tool_calls"],
        json!([{"tool_call_id": "x1", "tool_name": "lookup_weather",
                "args": {"city": "Oslo"}, "kind": "external"}])
    );

    app.mock.push(Script::text("Sunny in Oslo.", 1));
    let events = run_at(
        &app,
        "/api/sessions/execute/stream",
        json!({"preset_id": "guarded", "parent_session_id": first,
               "tool_results": [{"tool_call_id": "x1", "output": "sunny, 21 C"}]}),
    )
    .await;
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    assert_eq!(
        results(&events),
        [("x1".into(), "sunny, 21 C".into(), false)]
    );
    assert_eq!(
        last_dialogue(&app).last().unwrap(),
        &("tool".to_owned(), "sunny, 21 C".to_owned())
    );

    for (tool, field) in [
        (json!({"name": "shell"}), "external_tools[0].name"),
        (json!({"name": "has space"}), "external_tools[0].name"),
        (
            json!({"name": "ok", "parameters": {"type": "string"}}),
            "external_tools[0].parameters",
        ),
    ] {
        let (status, error) = app
            .post(
                "/api/conversations/run",
                json!({"preset_id": "guarded", "input": text_input("x"),
                       "external_tools": [tool]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["details"]["fields"][0]["field"], field, "{error}");
    }
}

/// One model turn whose first call waits for the caller (an external tool) while the
/// second runs at once: the run that supplies the first result puts it before the second
/// one, so the model gets the results in call order (the mock refuses any other order).
async fn mixed_turn_answers_in_call_order(app: MockApp) {
    let weather = json!({"name": "lookup_weather", "description": "Weather by city",
                         "parameters": {"type": "object",
                                        "properties": {"city": {"type": "string"}}}});
    app.mock.push(
        Script::new()
            .tool_call(0, "x1", "lookup_weather", &[r#"{"city":"Oslo"}"#])
            .tool_call(1, "s1", "shell", &[r#"{"command":"echo ran now"}"#]),
    );
    let events = run_all(
        &app,
        json!({"preset_id": MOCK_PRESET, "input": text_input("weather and a command"),
               "external_tools": [weather]}),
    )
    .await;
    let (first, _) = ids(&events);
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "awaiting_tool_results"
    );
    assert_eq!(results(&events)[0].0, "s1");

    app.mock.push(Script::text("Sunny, and it ran.", 1));
    let events = run_at(
        &app,
        "/api/sessions/execute/stream",
        json!({"preset_id": MOCK_PRESET, "parent_session_id": first,
               "tool_results": [{"tool_call_id": "x1", "output": "sunny"}]}),
    )
    .await;
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    let seen = last_dialogue(&app);
    let tools: Vec<&str> = seen
        .iter()
        .filter(|(role, _)| role == "tool")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(tools.len(), 2, "{seen:?}");
    assert_eq!(tools[0], "sunny");
    assert!(tools[1].contains("ran now"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_turn_answers_in_call_order_local() {
    if let Some(app) = MockApp::start(crate::support::Backend::Local, &[]).await {
        mixed_turn_answers_in_call_order(app).await;
    }
}

crate::support::on_both_backends!(approve, deny_and_auto_deny, external_tool);
