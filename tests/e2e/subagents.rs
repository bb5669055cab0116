//! Subagents, the mailbox and fire (spec 05) over real HTTP with the mock LLM: sync
//! `delegate` streams a nested agent and remembers it; `async_delegate` starts separate
//! sessions whose outcomes wait in the mailbox until one fire delivers them all.
//!
//! Every agent here has its own system prompt (`ROLE-<name>`), and the mock routes each
//! script by that marker, so concurrent agents get their own answers in any order.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    MockApp, SseEvent, SseStream, assert_run_stream, chat, dialogue, eventually, gate_command,
    open_gate, position, shell_call, text_input, types,
};

/// A preset on the mock model whose system prompt is the routing marker `ROLE-<id>`.
fn agent_preset(app: &MockApp, id: &str, extra: Value) -> Value {
    let mut body = json!({
        "preset_id": id,
        "name": id,
        "model": {"name": "openai:gpt-test"},
        "system_prompt": format!("ROLE-{id}"),
        "toolsets": [{"toolset_name": "shell"}],
        "environment": {"default_path": app.work.display().to_string()}
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Presets `alpha` and `beta` (workers) and `boss`, which may delegate to both, also
/// asynchronously.
async fn team(app: &MockApp) {
    for body in [
        agent_preset(app, "alpha", json!({})),
        agent_preset(app, "beta", json!({})),
        agent_preset(
            app,
            "careful",
            json!({"tool_config": {"require_approval": ["shell"]}}),
        ),
        agent_preset(
            app,
            "boss",
            json!({"subagents": {"async_enabled": true, "refs": [
                {"preset_id": "alpha", "name": "alpha", "description": "counts things",
                 "instruction": "INSTR-alpha: ask alpha for every count."},
                {"preset_id": "beta", "name": "beta", "description": "writes things"},
                {"preset_id": "careful", "name": "careful", "description": "asks first"}
            ]}}),
        ),
    ] {
        let (status, created) = app.post("/api/presets/create", body).await;
        assert_eq!(status, StatusCode::OK, "{created}");
    }
}

/// A model turn calling `tool` (delegate or async_delegate) for each `(id, subagent, task)`.
fn dispatch(tool: &str, calls: &[(&str, &str, &str)]) -> Script {
    calls
        .iter()
        .enumerate()
        .fold(Script::new(), |s, (i, (id, subagent, task))| {
            let args = json!({"subagent": subagent, "task": task}).to_string();
            s.tool_call(i as u32, id, tool, &[&args])
        })
}

fn boss_run(text: &str) -> Value {
    json!({"preset_id": "boss", "input": text_input(text)})
}

fn continue_run(conversation_id: &str, text: &str) -> Value {
    json!({"conversation_id": conversation_id, "input": text_input(text)})
}

/// The text the given agent streamed.
fn text_by(events: &[SseEvent], agent_id: &str) -> String {
    events
        .iter()
        .filter(|e| e.is("content_delta") && e.data["agent_id"] == agent_id)
        .map(|e| e.payload()["delta"].as_str().unwrap())
        .collect()
}

/// The output of tool call `id`.
fn tool_output(events: &[SseEvent], id: &str) -> String {
    events
        .iter()
        .find(|e| e.is("tool_call_result") && e.payload()["tool_call_id"] == id)
        .unwrap_or_else(|| panic!("no result of {id}: {}", types(events)))
        .payload()["output"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The session id in "dispatched to 'name' (session ID)".
fn dispatched_session(output: &str, name: &str) -> String {
    let prefix = format!("dispatched to '{name}' (session ");
    output
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a dispatch of {name}: {output}"))
        .to_owned()
}

/// The model requests made by the agent whose system prompt is `ROLE-<role>`.
fn requests_of(app: &MockApp, role: &str) -> Vec<mock_llm::RecordedRequest> {
    let marker = format!("ROLE-{role}");
    app.mock
        .requests()
        .into_iter()
        .filter(|r| {
            chat(r)
                .first()
                .is_some_and(|(_, text)| text.contains(&marker))
        })
        .collect()
}

async fn mailbox(app: &MockApp, conversation_id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/conversations/{conversation_id}/mailbox"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until `n` messages are pending; returns the mailbox.
async fn wait_pending(app: &MockApp, conversation_id: &str, n: u64) -> Value {
    eventually(&format!("{n} pending mailbox messages"), || async {
        let body = mailbox(app, conversation_id).await;
        (body["pending_count"] == n).then_some(body)
    })
    .await
}

async fn fire(app: &MockApp, conversation_id: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/conversations/{conversation_id}/fire"), body)
        .await
}

/// A run to its end over sse.
async fn run_all(app: &MockApp, body: Value) -> Vec<SseEvent> {
    app.run_sse(body).await.all().await
}

/// `delegate`: the subagent's events stream inline under its own agent id between
/// subagent_started and subagent_completed, its answer is the tool result, the boss's
/// system prompt introduces it, and a later delegation continues its history.
async fn delegate_streams_nested_and_remembers(app: MockApp) {
    team(&app).await;
    app.mock.push_when(
        "ROLE-boss",
        dispatch("delegate", &[("d1", "alpha", "count the files")]),
    );
    app.mock
        .push_when("ROLE-alpha", Script::text("alpha counted 3", 3));
    app.mock
        .push_when("ROLE-boss", Script::text("boss: 3 files", 2));
    let events = run_all(&app, boss_run("how many files?")).await;
    let session = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&events, &session, 1);
    assert_eq!(events.last().unwrap().payload()["status"], "committed");

    let started = position(&events, "subagent_started");
    let completed = position(&events, "subagent_completed");
    assert!(started < completed, "{}", types(&events));
    for at in [started, completed] {
        assert_eq!(events[at].data["agent_id"], "main");
        assert_eq!(events[at].payload()["subagent_name"], "alpha");
        assert_eq!(events[at].payload()["subagent_agent_id"], "alpha");
    }
    let inside = &events[started + 1..completed];
    assert!(
        inside.iter().any(|e| e.is("content_delta")),
        "{}",
        types(&events)
    );
    assert!(
        inside
            .iter()
            .filter(|e| e.is("content_delta") || e.is("message_start"))
            .all(|e| e.data["agent_id"] == "alpha"),
        "nested events carry the subagent's agent id"
    );
    assert_eq!(text_by(&events, "alpha"), "alpha counted 3");
    assert_eq!(text_by(&events, "main"), "boss: 3 files");
    assert_eq!(events[completed].payload()["status"], "success");
    assert_eq!(events[completed].payload()["result"], "alpha counted 3");
    assert_eq!(tool_output(&events, "d1"), "alpha counted 3");

    let boss = requests_of(&app, "boss");
    let system = &chat(&boss[0])[0].1;
    assert!(system.contains("## Subagents"), "{system}");
    assert!(system.contains("- alpha: counts things"), "{system}");
    assert!(
        system.contains("INSTR-alpha: ask alpha for every count."),
        "{system}"
    );
    let tools: Vec<&str> = boss[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"delegate") && tools.contains(&"async_delegate"),
        "{tools:?}"
    );
    let stored = app.session(&session).await;
    let blocks: Vec<&Value> = stored["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "subagent")
        .collect();
    assert_eq!(
        blocks,
        [
            &json!({"kind": "subagent", "agent_id": "alpha", "subagent_name": "alpha",
                 "result": "alpha counted 3", "status": "success"})
        ]
    );

    // A second delegation to alpha continues alpha's conversation.
    app.mock.push_when(
        "ROLE-boss",
        dispatch("delegate", &[("d2", "alpha", "and the hidden ones?")]),
    );
    app.mock
        .push_when("ROLE-alpha", Script::text("plus 1 hidden", 2));
    app.mock.push_when("ROLE-boss", Script::text("4 in all", 1));
    let conversation = events[0].payload()["conversation_id"].as_str().unwrap();
    let second = run_all(&app, continue_run(conversation, "and hidden?")).await;
    assert_eq!(second.last().unwrap().payload()["status"], "committed");
    assert_eq!(tool_output(&second, "d2"), "plus 1 hidden");
    let alpha = requests_of(&app, "alpha");
    assert_eq!(alpha.len(), 2);
    assert_eq!(
        dialogue(&alpha[1]),
        crate::support::turns(&[
            ("user", "count the files"),
            ("assistant", "alpha counted 3"),
            ("user", "and the hidden ones?")
        ])
    );
    // The subagent's turn is in the boss's history, not its own words.
    let boss = requests_of(&app, "boss");
    let last = dialogue(boss.last().unwrap());
    assert_eq!(
        last.last().unwrap(),
        &("tool".to_owned(), "plus 1 hidden".to_owned())
    );
}

/// Starts a boss run that dispatches `alpha` and `beta` asynchronously (answering
/// `alpha_says` and `beta_says`), waits for both outcomes; returns the conversation, the
/// boss session and the two subagent sessions.
async fn dispatch_two(app: &MockApp, alpha_says: Script, beta_says: Script) -> [String; 4] {
    app.mock.push_when(
        "ROLE-boss",
        dispatch(
            "async_delegate",
            &[
                ("a1", "alpha", "count apples"),
                ("b1", "beta", "write a haiku"),
            ],
        ),
    );
    app.mock.push_when("ROLE-alpha", alpha_says);
    app.mock.push_when("ROLE-beta", beta_says);
    app.mock
        .push_when("ROLE-boss", Script::text("dispatched both", 1));
    let events = run_all(app, boss_run("split the work")).await;
    let boss = events[0].data["session_id"].as_str().unwrap().to_owned();
    let conversation = events[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    let alpha = dispatched_session(&tool_output(&events, "a1"), "alpha");
    let beta = dispatched_session(&tool_output(&events, "b1"), "beta");
    wait_pending(app, &conversation, 2).await;
    [conversation, boss, alpha, beta]
}

/// Two async subagents finish into the mailbox; one fire delivers both in one
/// continuation whose prompt has a section per subagent; a second fire is 422.
async fn async_fan_in_with_one_fire(app: MockApp) {
    team(&app).await;
    let [conversation, boss, alpha, beta] = dispatch_two(
        &app,
        Script::text("ALPHA-RESULT: 12 apples", 2),
        Script::text("BETA-RESULT: a haiku", 2),
    )
    .await;

    // The subagents are sessions of the conversation, spawned by the boss.
    for (id, preset) in [(&alpha, "alpha"), (&beta, "beta")] {
        let s = app.session(id).await;
        assert_eq!(s["session_type"], "async_subagent", "{s}");
        assert_eq!(s["transport"], "stream");
        assert_eq!(s["spawned_by"], boss.as_str());
        assert_eq!(
            s["subagent_name"], preset,
            "the name it was dispatched under"
        );
        assert_eq!(s["conversation_id"], conversation.as_str());
        assert_eq!(s["preset_id"], preset);
        assert_eq!(s["status"], "committed");
    }
    let inbox = mailbox(&app, &conversation).await;
    let mut got: Vec<(String, String, String)> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m.get("delivered_to").is_none(), "{m}");
            (
                m["subagent_name"].as_str().unwrap().to_owned(),
                m["source_session_id"].as_str().unwrap().to_owned(),
                m["source_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alpha".into(), alpha.clone(), "subagent_result".into()),
            ("beta".into(), beta.clone(), "subagent_result".into())
        ]
    );
    let (_, view) = app
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert_eq!(view["mailbox"]["pending_count"], 2);

    app.mock.push_when("ROLE-boss", Script::text("merged", 1));
    let (status, accepted) = fire(
        &app,
        &conversation,
        json!({"input": text_input("Now summarize.")}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let fired = accepted["session_id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["conversation_id"], conversation.as_str());
    let events = app
        .attach(&format!("/api/sessions/{fired}/events"), None)
        .await
        .all()
        .await;
    assert_run_stream(&events, &fired, 1);
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    let record = app.session(&fired).await;
    assert_eq!(record["parent_session_id"], boss.as_str());
    assert_eq!(record["transport"], "stream");

    let prompt = dialogue(requests_of(&app, "boss").last().unwrap())
        .last()
        .unwrap()
        .clone();
    assert_eq!(prompt.0, "user");
    let text = prompt.1;
    assert!(text.starts_with("Results of 2 subagents:"), "{text}");
    assert!(
        text.contains(&format!(
            "## alpha (session {alpha}): completed\nALPHA-RESULT: 12 apples"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "## beta (session {beta}): completed\nBETA-RESULT: a haiku"
        )),
        "{text}"
    );
    assert!(text.ends_with("Now summarize."), "{text}");

    let inbox = mailbox(&app, &conversation).await;
    assert_eq!(inbox["pending_count"], 0);
    for m in inbox["messages"].as_array().unwrap() {
        assert_eq!(m["delivered_to"], fired.as_str(), "{m}");
    }
    let (status, body) = fire(&app, &conversation, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "mailbox_empty");
}

/// A failed subagent posts `subagent_failed`; a second dispatch to a subagent continues
/// its chain from its last committed session; fire renders both kinds of outcome.
async fn failures_and_chains(app: MockApp) {
    team(&app).await;
    let [conversation, _boss, alpha, beta] = dispatch_two(
        &app,
        Script::text("ALPHA-1", 1),
        Script::invalid_request("the model refused the request"),
    )
    .await;
    let inbox = mailbox(&app, &conversation).await;
    let kind_of = |session: &str| {
        inbox["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["source_session_id"] == session)
            .unwrap()["source_type"]
            .clone()
    };
    assert_eq!(kind_of(&alpha), "subagent_result");
    assert_eq!(kind_of(&beta), "subagent_failed");
    assert_eq!(app.session(&beta).await["status"], "failed");

    // Dispatch alpha again (and beta, whose chain has nothing committed yet).
    app.mock.push_when(
        "ROLE-boss",
        dispatch(
            "async_delegate",
            &[
                ("a2", "alpha", "now count pears"),
                ("b2", "beta", "try again"),
            ],
        ),
    );
    app.mock.push_when("ROLE-alpha", Script::text("ALPHA-2", 1));
    app.mock.push_when("ROLE-beta", Script::text("BETA-2", 1));
    app.mock.push_when("ROLE-boss", Script::text("again", 1));
    let events = run_all(&app, continue_run(&conversation, "more")).await;
    let alpha2 = dispatched_session(&tool_output(&events, "a2"), "alpha");
    let beta2 = dispatched_session(&tool_output(&events, "b2"), "beta");
    wait_pending(&app, &conversation, 4).await;
    assert_eq!(
        app.session(&alpha2).await["parent_session_id"],
        alpha.as_str()
    );
    assert!(app.session(&beta2).await.get("parent_session_id").is_none());
    let alpha_requests = requests_of(&app, "alpha");
    assert_eq!(
        dialogue(alpha_requests.last().unwrap()),
        crate::support::turns(&[
            ("user", "count apples"),
            ("assistant", "ALPHA-1"),
            ("user", "now count pears")
        ])
    );

    app.mock.push_when("ROLE-boss", Script::text("noted", 1));
    // An sse fire answers with the continuation's events.
    let path = format!("/api/conversations/{conversation}/fire");
    let events = SseStream::new(
        app.open(&format!("{path}/stream"), Some(&json!({})), None)
            .await,
    )
    .await
    .all()
    .await;
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    let text = dialogue(requests_of(&app, "boss").last().unwrap())
        .last()
        .unwrap()
        .1
        .clone();
    assert!(text.starts_with("Results of 4 subagents:"), "{text}");
    assert!(
        text.contains(&format!("## beta (session {beta}): failed\nmodel_error")),
        "{text}"
    );
    assert!(
        text.contains(&format!("## alpha (session {alpha2}): completed\nALPHA-2")),
        "{text}"
    );
}

/// Two fires at once: one continuation gets every message, the other is refused (409
/// busy or 422 empty); no message is delivered twice.
async fn concurrent_fires_deliver_once(app: MockApp) {
    team(&app).await;
    let [conversation, ..] = dispatch_two(&app, Script::text("A", 1), Script::text("B", 1)).await;
    app.mock.push_when("ROLE-boss", Script::text("one", 1));
    app.mock.push_when("ROLE-boss", Script::text("two", 1));
    let (first, second) = tokio::join!(
        fire(&app, &conversation, json!({})),
        fire(&app, &conversation, json!({}))
    );
    let (won, lost) = if first.0 == StatusCode::ACCEPTED {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(won.0, StatusCode::ACCEPTED, "{}", won.1);
    match lost.0 {
        StatusCode::CONFLICT => assert_eq!(lost.1["error"], "conversation_busy"),
        StatusCode::UNPROCESSABLE_ENTITY => assert_eq!(lost.1["error"], "mailbox_empty"),
        other => panic!("the second fire: {other}: {}", lost.1),
    }
    let fired = won.1["session_id"].as_str().unwrap();
    app.wait_finished(fired).await;
    let inbox = mailbox(&app, &conversation).await;
    assert_eq!(inbox["pending_count"], 0);
    for m in inbox["messages"].as_array().unwrap() {
        assert_eq!(m["delivered_to"], fired, "{m}");
    }
}

/// Interrupting the spawner stops only the spawner: its async subagent runs to completion
/// and reports to the mailbox.
async fn subagents_outlive_an_interrupted_spawner(app: MockApp) {
    team(&app).await;
    app.mock.push_when(
        "ROLE-boss",
        dispatch("async_delegate", &[("a1", "alpha", "wait for the gate")]),
    );
    app.mock.push_when(
        "ROLE-alpha",
        shell_call("s-alpha", &gate_command("gate-alpha")),
    );
    app.mock
        .push_when("ROLE-alpha", Script::text("alpha is through", 1));
    app.mock.push_when(
        "ROLE-boss",
        shell_call("s-boss", &gate_command("gate-boss")),
    );
    let mut stream = app.run_sse(boss_run("start alpha, then wait")).await;
    let head = stream
        .until(|e| e.is("tool_call_start") && e.payload()["tool_call_id"] == "s-boss")
        .await;
    let boss = head[0].data["session_id"].as_str().unwrap().to_owned();
    let conversation = head[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alpha = dispatched_session(&tool_output(&head, "a1"), "alpha");
    assert_eq!(app.status(&alpha).await, "executing");

    let (status, body) = app
        .post(&format!("/api/sessions/{boss}/interrupt"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rest = stream.all().await;
    let terminal = rest.last().unwrap();
    assert_eq!(
        terminal.payload()["stop_reason"],
        "interrupted",
        "{}",
        terminal.data
    );
    assert_eq!(app.wait_finished(&boss).await, "committed");
    assert_eq!(
        app.status(&alpha).await,
        "executing",
        "the interrupt did not cascade"
    );

    open_gate(&app.work, "gate-alpha");
    let inbox = wait_pending(&app, &conversation, 1).await;
    assert_eq!(inbox["messages"][0]["source_type"], "subagent_result");
    assert_eq!(app.session(&alpha).await["status"], "committed");
    let display = app.session(&alpha).await["display_messages"].clone();
    assert_eq!(
        display.as_array().unwrap().last().unwrap(),
        &json!({"kind": "assistant_text", "agent_id": "main", "text": "alpha is through"})
    );
}

/// An async subagent stopped on a call that needs approval reports that it waits; the
/// approval, given through `sessions/execute` on its session, continues its chain, which
/// reports again under the same name.
async fn a_waiting_subagent_is_resolved_in_its_chain(app: MockApp) {
    team(&app).await;
    app.mock.push_when(
        "ROLE-boss",
        dispatch("async_delegate", &[("c1", "careful", "clean up")]),
    );
    app.mock.push_when(
        "ROLE-careful",
        shell_call("sh1", "echo cleaned > cleaned.txt"),
    );
    app.mock.push_when("ROLE-boss", Script::text("sent", 1));
    let events = run_all(&app, boss_run("have it cleaned")).await;
    let boss = events[0].data["session_id"].as_str().unwrap().to_owned();
    let conversation = events[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let careful = dispatched_session(&tool_output(&events, "c1"), "careful");
    let inbox = wait_pending(&app, &conversation, 1).await;
    assert_eq!(inbox["messages"][0]["source_type"], "subagent_result");
    let waiting = app.session(&careful).await;
    assert_eq!(waiting["status"], "awaiting_tool_results");
    assert_eq!(waiting["pending_tool_calls"][0]["tool_call_id"], "sh1");
    assert!(!app.work.join("cleaned.txt").exists());

    app.mock
        .push_when("ROLE-boss", Script::text("I will approve it", 1));
    let path = format!("/api/conversations/{conversation}/fire");
    SseStream::new(
        app.open(&format!("{path}/stream"), Some(&json!({})), None)
            .await,
    )
    .await
    .all()
    .await;
    let text = dialogue(requests_of(&app, "boss").last().unwrap())
        .last()
        .unwrap()
        .1
        .clone();
    assert!(
        text.starts_with(&format!(
            "subagent careful (session {careful}) is waiting for tool results."
        )),
        "{text}"
    );
    assert!(text.contains("shell (sh1)"), "{text}");

    app.mock
        .push_when("ROLE-careful", Script::text("cleaned up", 1));
    let body = json!({"preset_id": "careful", "parent_session_id": careful,
                      "user_interactions": [{"tool_call_id": "sh1", "approved": true}]});
    let events = SseStream::new(
        app.open("/api/sessions/execute/stream", Some(&body), None)
            .await,
    )
    .await
    .all()
    .await;
    let resumed = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    assert!(
        app.work.join("cleaned.txt").exists(),
        "the approved call ran"
    );
    let record = app.session(&resumed).await;
    assert_eq!(record["session_type"], "async_subagent");
    assert_eq!(record["spawned_by"], boss.as_str());
    assert_eq!(
        record["subagent_name"], "careful",
        "a continuation of a subagent's session keeps its name"
    );
    assert_eq!(record["parent_session_id"], careful.as_str());
    let inbox = wait_pending(&app, &conversation, 1).await;
    let latest = inbox["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(latest["source_session_id"], resumed.as_str());
    assert_eq!(latest["subagent_name"], "careful");
    assert_eq!(latest["source_type"], "subagent_result");
}

/// Interrupting the caller while its sync subagent works: the subagent stops too, its
/// block closes as cancelled, the run commits what it produced, and the subagent's history
/// (its unfinished task) is kept for the next delegation.
async fn an_interrupt_reaches_a_sync_subagent_and_keeps_its_history(app: MockApp) {
    team(&app).await;
    app.mock.push_when(
        "ROLE-boss",
        dispatch("delegate", &[("d1", "alpha", "count forever")]),
    );
    app.mock.push_when(
        "ROLE-alpha",
        Script::new().text_deltas(&["counting ", "1 2 3"]).hang(),
    );
    let mut stream = app.run_sse(boss_run("start counting")).await;
    let head = stream
        .until(|e| e.is("content_delta") && e.data["agent_id"] == "alpha")
        .await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    let conversation = head[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .post(&format!("/api/sessions/{session}/interrupt"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut events = head;
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    let completed = position(&events, "subagent_completed");
    assert_eq!(events[completed].payload()["status"], "cancelled");
    let end = events
        .iter()
        .find(|e| e.is("tool_call_end") && e.payload()["tool_call_id"] == "d1")
        .unwrap();
    assert_eq!(end.payload()["status"], "cancelled");
    let terminal = events.last().unwrap();
    assert_eq!(
        terminal.payload()["stop_reason"],
        "interrupted",
        "{}",
        terminal.data
    );
    assert_eq!(app.wait_finished(&session).await, "committed");
    let stored = app.session(&session).await;
    let block = stored["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "subagent")
        .unwrap()
        .clone();
    assert_eq!(block["status"], "cancelled", "{block}");

    app.mock.push_when(
        "ROLE-boss",
        dispatch("delegate", &[("d2", "alpha", "just say the total")]),
    );
    app.mock.push_when("ROLE-alpha", Script::text("3", 1));
    app.mock
        .push_when("ROLE-boss", Script::text("alpha says 3", 1));
    let events = run_all(&app, continue_run(&conversation, "well?")).await;
    assert_eq!(tool_output(&events, "d2"), "3");
    let alpha = requests_of(&app, "alpha");
    let seen = dialogue(alpha.last().unwrap());
    assert_eq!(
        seen.first().unwrap(),
        &("user".to_owned(), "count forever".to_owned())
    );
    assert_eq!(
        seen.last().unwrap(),
        &("user".to_owned(), "just say the total".to_owned())
    );
}

crate::support::on_both_backends!(
    delegate_streams_nested_and_remembers,
    async_fan_in_with_one_fire,
    failures_and_chains,
    concurrent_fires_deliver_once,
    subagents_outlive_an_interrupted_spawner,
    a_waiting_subagent_is_resolved_in_its_chain,
    an_interrupt_reaches_a_sync_subagent_and_keeps_its_history,
);

/// At the admission cap (`MAX_CONCURRENT_RUNS=1`, the boss's own run holds the one slot) an
/// `async_delegate` is refused as a tool error the model reads; the boss goes on and
/// commits, and nothing was dispatched.
#[tokio::test(flavor = "multi_thread")]
async fn async_delegate_at_the_run_cap_is_a_tool_error() {
    let Some(app) = MockApp::start(
        crate::support::Backend::Local,
        &[("MAX_CONCURRENT_RUNS", "1")],
    )
    .await
    else {
        return;
    };
    team(&app).await;
    app.mock.push_when(
        "ROLE-boss",
        dispatch("async_delegate", &[("a1", "alpha", "count apples")]),
    );
    app.mock
        .push_when("ROLE-boss", Script::text("could not dispatch", 1));
    let events = run_all(&app, boss_run("split the work")).await;
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    let result = events
        .iter()
        .find(|e| e.is("tool_call_result") && e.payload()["tool_call_id"] == "a1")
        .unwrap();
    assert_eq!(result.payload()["is_error"], true, "{}", result.data);
    let output = tool_output(&events, "a1");
    assert!(output.contains("1 runs are going"), "{output}");
    assert!(requests_of(&app, "alpha").is_empty(), "alpha never ran");
}

/// An async subagent's outcome reaching the mailbox is a `mailbox_updated` notification
/// naming the subagent; the log replays it to a client resuming from the start.
#[tokio::test(flavor = "multi_thread")]
async fn mailbox_outcomes_are_notified() {
    let Some(app) = MockApp::start(crate::support::Backend::Local, &[]).await else {
        return;
    };
    team(&app).await;
    let [conversation, _, alpha, beta] = dispatch_two(
        &app,
        Script::text("3 apples", 1),
        Script::text("a haiku", 1),
    )
    .await;
    let mut feed = app.attach("/api/notifications", Some(0)).await;
    let mut mailbox = Vec::new();
    while mailbox.len() < 2 {
        let e = feed.next().await.expect("the feed goes on");
        if e.is("mailbox_updated") {
            mailbox.push(e);
        }
    }
    let mut named: Vec<(String, String)> = mailbox
        .iter()
        .map(|e| {
            assert_eq!(e.data["conversation_id"], conversation.as_str());
            assert_eq!(e.data["session_type"], "async_subagent");
            (
                e.data["subagent"].as_str().unwrap().to_owned(),
                e.data["session_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [("alpha".to_owned(), alpha), ("beta".to_owned(), beta)]
    );
}
