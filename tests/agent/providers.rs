//! Whole runs of the agent loop through the real provider adapters (OpenAI Chat
//! Completions, Anthropic Messages) against the mock LLM server, with real tools on a
//! temporary directory: the model reads a file with `shell`, changes it with `edit`, sees
//! both results and answers.

use agent_runtime::app;
use agent_runtime::config::Config;
use agent_runtime::core::agent::{Agent, AgentSpec, RetryPolicy, RunEnd, RunLimits};
use agent_runtime::core::run::{CollectingSink, RunControl};
use mock_llm::{MockLlm, RecordedRequest, Script};
use ports::{EnvironmentSpec, EventPayload, ModelMessage, ModelSettings, SessionState, UserPart};
use serde_json::Value;

use crate::support::{all_tools, local_env};

/// A config pointing `provider` at the mock, as the service would read it.
fn config(provider: &str, base_url: &str) -> Config {
    let prefix = provider.to_ascii_uppercase();
    Config::from_vars([
        (format!("{prefix}_BASE_URL"), base_url.to_owned()),
        (format!("{prefix}_API_KEY"), "sk-test".to_owned()),
    ])
    .unwrap()
}

/// Three scripted answers: shell, then edit (arguments in fragments), then the answer.
fn script_task(mock: &MockLlm) {
    mock.push(
        Script::new()
            .then_text("Let me look.", 2)
            .tool_call(
                0,
                "call_1",
                "shell",
                &[r#"{"comm"#, r#"and":"cat greet"#, r#"ing.txt"}"#],
            )
            .usage(100, 20)
            .finish("tool_calls"),
    );
    mock.push(
        Script::new()
            .tool_call(
                0,
                "call_2",
                "edit",
                &[
                    r#"{"path":"greeting.txt","#,
                    r#""old_string":"hello","#,
                    r#""new_string":"goodbye"}"#,
                ],
            )
            .usage(150, 30)
            .finish("tool_calls"),
    );
    mock.push(Script::text("Done: the greeting now says goodbye.", 4).usage(200, 12));
}

async fn run_task(provider: &str, model: &str) -> (tempfile::TempDir, Vec<RecordedRequest>) {
    let mock = MockLlm::start().await;
    script_task(&mock);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting.txt"), "hello world\n").unwrap();
    let provider = app::model_provider(&config(provider, &mock.base_url())).unwrap();
    let env = local_env(dir.path(), &EnvironmentSpec::default(), |n| {
        std::env::var(n).ok()
    });
    let agent = Agent::new(
        provider,
        env,
        AgentSpec {
            agent_id: "main".into(),
            model: ModelSettings {
                name: model.into(),
                max_tokens: Some(1024),
                temperature: Some(0.2),
                ..Default::default()
            },
            system_prompt: "You edit files.".into(),
            toolbox: all_tools(),
            limits: RunLimits::default(),
            retry: RetryPolicy::default(),
            deferral: Default::default(),
        },
    );
    let sink = CollectingSink::default();
    let out = agent
        .run(
            SessionState::default(),
            vec![UserPart::Text {
                text: "Change hello to goodbye in greeting.txt".into(),
            }],
            &RunControl::new(),
            &sink,
        )
        .await;

    assert_eq!(out.end, RunEnd::Completed, "{:?}", out.end);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap(),
        "goodbye world\n"
    );
    // user, assistant(shell), tool, assistant(edit), tool, assistant(answer)
    assert_eq!(out.state.message_history.len(), 6);
    assert!(matches!(
        out.state.message_history.last(),
        Some(ModelMessage::Assistant { parts }) if parts == &vec![ports::AssistantPart::Text {
            text: "Done: the greeting now says goodbye.".into()
        }]
    ));
    assert_eq!(out.usage.model_requests, 3);
    assert_eq!(out.usage.prompt_tokens, 450);
    assert_eq!(out.usage.completion_tokens, 62);
    let args: String = sink
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::ToolCallArgsDelta(d) if d.tool_call_id == "call_2" => {
                Some(d.delta.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        args,
        r#"{"path":"greeting.txt","old_string":"hello","new_string":"goodbye"}"#
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    // Each request's history was checked by the mock: every result answers its call.
    assert_eq!(mock.violations(), []);
    (dir, requests)
}

/// The text of every message of a request body, for "the model saw X" checks.
fn body_text(request: &RecordedRequest) -> String {
    request.body["messages"].to_string()
}

#[tokio::test]
async fn openai_adapter_runs_a_multi_step_task() {
    let (_dir, requests) = run_task("openai", "openai:gpt-4o-mini").await;
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(first.body["model"], "gpt-4o-mini");
    assert_eq!(first.body["stream"], true);
    assert_eq!(first.body["max_tokens"], 1024);
    assert_eq!(first.body["messages"][0]["role"], "system");
    assert_eq!(first.body["messages"][0]["content"], "You edit files.");
    let tools: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"shell") && tools.contains(&"edit"),
        "{tools:?}"
    );

    // The second request carries the shell's output as a tool message.
    let second = &requests[1].body["messages"];
    let tool_msg = second
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    let report: Value = serde_json::from_str(tool_msg["content"].as_str().unwrap()).unwrap();
    assert_eq!(report["stdout"], "hello world\n");
    assert_eq!(report["exit_code"], 0);
    assert!(body_text(&requests[2]).contains("Edited greeting.txt: 1 replacement"));
}

#[tokio::test]
async fn anthropic_adapter_runs_a_multi_step_task() {
    let (_dir, requests) = run_task("anthropic", "anthropic:claude-sonnet-4").await;
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.header("x-api-key"), Some("sk-test"));
    assert_eq!(first.body["model"], "claude-sonnet-4");
    // The system prompt is a cache breakpoint (prompt_cache is on by default).
    assert_eq!(
        first.body["system"],
        serde_json::json!([{"type": "text", "text": "You edit files.",
            "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(first.body["messages"][0]["role"], "user");

    // Tool results travel as user content blocks of type tool_result.
    let second = requests[1].body["messages"].as_array().unwrap().clone();
    let result = second
        .iter()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|block| block["type"] == "tool_result")
        .unwrap();
    assert!(result.to_string().contains("hello world"), "{result}");
    assert!(body_text(&requests[2]).contains("Edited greeting.txt: 1 replacement"));
}

#[tokio::test]
async fn test_models_need_no_network() {
    let provider =
        app::model_provider(&Config::from_vars(Vec::<(String, String)>::new()).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.txt"), "content of x").unwrap();
    let env = local_env(dir.path(), &EnvironmentSpec::default(), |_| None);
    let spec = |model: &str| AgentSpec {
        agent_id: "main".into(),
        model: ModelSettings {
            name: model.into(),
            ..Default::default()
        },
        system_prompt: String::new(),
        toolbox: all_tools(),
        limits: RunLimits::default(),
        retry: RetryPolicy::default(),
        deferral: Default::default(),
    };
    let ask = |text: &str| {
        vec![UserPart::Text {
            text: text.to_owned(),
        }]
    };

    let echo = Agent::new(provider.clone(), env.clone(), spec("test:echo"));
    let sink = CollectingSink::default();
    let out = echo
        .run(
            SessionState::default(),
            ask("hi there"),
            &RunControl::new(),
            &sink,
        )
        .await;
    assert_eq!(out.end, RunEnd::Completed);
    let deltas = sink
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, EventPayload::ContentDelta(_)))
        .count();
    assert!(deltas >= 2, "streamed in several deltas: {deltas}");
    assert!(matches!(
        out.state.message_history.last(),
        Some(ModelMessage::Assistant { parts }) if parts == &vec![ports::AssistantPart::Text {
            text: "echo: hi there".into()
        }]
    ));

    let call = Agent::new(provider, env, spec("test:call:view"));
    let out = call
        .run(
            SessionState::default(),
            ask(r#"{"path":"x.txt"}"#),
            &RunControl::new(),
            &CollectingSink::default(),
        )
        .await;
    assert_eq!(out.end, RunEnd::Completed);
    let Some(ModelMessage::Assistant { parts }) = out.state.message_history.last() else {
        panic!("ends with an answer");
    };
    let ports::AssistantPart::Text { text } = &parts[0] else {
        panic!("a text answer");
    };
    assert!(text.contains("content of x"), "{text}");
}
