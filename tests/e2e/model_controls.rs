//! A preset's model controls reaching the provider: extended thinking (signatures
//! replayed), reasoning effort and prompt-cache breakpoints on both wire formats, changed
//! per run by `config_override`, and the cache tokens and the answering model in
//! `run_summary`.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{MockApp, on_both_backends, text_input};

on_both_backends!(thinking_effort_and_cache_reach_both_wires);

pub async fn create_preset(app: &MockApp, body: Value) {
    let (status, body) = app.post("/api/presets/create", body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `…/run/wait`'s result, which must be a 200.
pub async fn run_wait(app: &MockApp, body: Value) -> Value {
    let (status, body) = app.post("/api/conversations/run/wait", body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Where the body carries a cache breakpoint, as JSON pointers.
fn breakpoints(body: &Value) -> Vec<String> {
    fn walk(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.contains_key("cache_control") {
                    out.push(at.to_owned());
                }
                for (k, v) in map {
                    walk(v, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(body, "", &mut out);
    out
}

async fn thinking_effort_and_cache_reach_both_wires(app: MockApp) {
    let work = app.work.display().to_string();
    create_preset(
        &app,
        json!({
            "preset_id": "claude", "name": "Claude",
            "model": {"name": "anthropic:claude-test", "thinking": {"budget_tokens": 4000},
                      "reasoning_effort": "high"},
            "system_prompt": "Be brief.",
            "toolsets": [{"toolset_name": "shell"}],
            "environment": {"default_path": work},
        }),
    )
    .await;
    let (_, preset) = app.get("/api/presets/claude/get").await;
    assert_eq!(
        preset["model"]["prompt_cache"], true,
        "on by default: {preset}"
    );
    assert_eq!(preset["model"]["thinking"]["budget_tokens"], 4000);
    assert_eq!(preset["model"]["reasoning_effort"], "high");

    app.mock.push(
        Script::new()
            .thinking(&["Let me ", "think."], "sig-1")
            .then_text("Hi.", 1)
            .usage(100, 5)
            .cache_usage(800, 40),
    );
    let first = run_wait(
        &app,
        json!({"preset_id": "claude", "input": text_input("hello")}),
    )
    .await;
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["model"], "claude-test");
    assert_eq!(
        sent.body["thinking"],
        json!({"type": "enabled", "budget_tokens": 4000})
    );
    assert_eq!(sent.body["output_config"], json!({"effort": "high"}));
    assert_eq!(
        breakpoints(&sent.body),
        ["/messages/0/content/0", "/system/0", "/tools/0"],
        "system prompt, the (only) tool and the latest user message"
    );
    let summary = &first["run_summary"];
    assert_eq!(summary["model"], "anthropic:claude-test", "{first}");
    assert_eq!(summary["usage"]["cache_read_tokens"], 800);
    assert_eq!(summary["usage"]["cache_write_tokens"], 40);
    assert_eq!(summary["usage"]["prompt_tokens"], 940);

    // The next run replays the signed thinking; this run's override turns the cache off
    // and lowers the effort.
    app.mock.push(Script::text("Again.", 1));
    run_wait(
        &app,
        json!({
            "conversation_id": first["conversation_id"],
            "input": text_input("more"),
            "config_override": {"model": {"prompt_cache": false, "reasoning_effort": "low"}},
        }),
    )
    .await;
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(breakpoints(&sent.body), Vec::<String>::new());
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(sent.body["output_config"], json!({"effort": "low"}));
    assert_eq!(
        sent.body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"})
    );

    // OpenAI's wire: the effort by its own name, the cache left to the provider.
    create_preset(
        &app,
        json!({
            "preset_id": "reasoner", "name": "Reasoner",
            "model": {"name": "openai:o4-mini", "reasoning_effort": "medium"},
        }),
    )
    .await;
    app.mock
        .push(Script::text("Sure.", 1).usage(50, 2).cache_usage(30, 0));
    let third = run_wait(
        &app,
        json!({"preset_id": "reasoner", "input": text_input("hi")}),
    )
    .await;
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["reasoning_effort"], "medium");
    assert!(sent.body.get("thinking").is_none(), "{}", sent.body);
    assert_eq!(breakpoints(&sent.body), Vec::<String>::new());
    assert_eq!(third["run_summary"]["usage"]["cache_read_tokens"], 30);
    assert_eq!(third["run_summary"]["model"], "openai:o4-mini");
}
