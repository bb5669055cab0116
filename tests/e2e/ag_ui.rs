//! AG-UI over real HTTP: `POST /api/ag-ui/{preset_id}` with a thread the service has not
//! seen, then the same thread again; `?encoding=ag-ui` on a run stream. Every stream is
//! checked for AG-UI's nesting rules. The official client runs in scripts/ag-ui/.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, text_input};

/// The AG-UI events of a response body.
async fn events(resp: reqwest::Response) -> Vec<Value> {
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// AG-UI's rules: `RUN_STARTED` first, one terminal event last, text and tool calls
/// opened before use and closed before the end.
fn assert_well_formed(events: &[Value]) {
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "RUN_STARTED", "{types:?}");
    assert!(
        matches!(*types.last().unwrap(), "RUN_FINISHED" | "RUN_ERROR"),
        "{types:?}"
    );
    let mut text = None;
    let mut tools = Vec::new();
    for e in events {
        match e["type"].as_str().unwrap() {
            "TEXT_MESSAGE_START" => {
                assert!(text.is_none(), "{types:?}");
                text = Some(e["messageId"].clone());
            }
            "TEXT_MESSAGE_CONTENT" => assert_eq!(text.as_ref(), Some(&e["messageId"])),
            "TEXT_MESSAGE_END" => assert_eq!(text.take().as_ref(), Some(&e["messageId"])),
            "TOOL_CALL_START" => tools.push(e["toolCallId"].clone()),
            "TOOL_CALL_ARGS" => assert!(tools.contains(&e["toolCallId"]), "{types:?}"),
            "TOOL_CALL_END" => tools.retain(|t| *t != e["toolCallId"]),
            "RUN_FINISHED" | "RUN_ERROR" => {
                assert!(
                    text.is_none() && tools.is_empty(),
                    "open at the end: {types:?}"
                );
            }
            _ => {}
        }
    }
}

fn without_custom(events: &[Value]) -> Vec<&str> {
    let mut types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| *t != "CUSTOM")
        .collect();
    types.dedup();
    types
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thread_runs_through_the_ag_ui_endpoint_and_continues() {
    let app = TestApp::sqlite().await;
    let (status, body) = app
        .post(
            "/api/presets/create",
            json!({"preset_id": "lister", "name": "Lister", "model": {"name": "test:call:ls"},
                   "toolsets": [{"toolset_name": "core"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let input = |messages: Value, run: &str| {
        json!({"threadId": "t-1", "runId": run, "state": {}, "tools": [], "context": [],
               "forwardedProps": {}, "messages": messages})
    };
    let ask = json!({"id": "u1", "role": "user", "content": "{\"path\": \".\"}"});
    let first = events(
        app.req(Method::POST, "/api/ag-ui/lister")
            .json(&input(json!([ask]), "r-1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_well_formed(&first);
    assert_eq!(
        without_custom(&first),
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "TOOL_CALL_RESULT",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "RUN_FINISHED"
        ]
    );
    assert_eq!(first[0]["threadId"], "t-1");
    assert_eq!(first[0]["runId"], "r-1");
    let finished = first.last().unwrap();
    let conversation = finished["result"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(finished["result"]["status"], "committed");

    let again = json!([ask, {"id": "a1", "role": "assistant", "content": "done"},
                       {"id": "u2", "role": "user", "content": "{\"path\": \".\"}"}]);
    let second = events(
        app.req(Method::POST, "/api/ag-ui/lister")
            .json(&input(again, "r-2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_well_formed(&second);
    assert_eq!(
        second.last().unwrap()["result"]["conversation_id"],
        conversation,
        "a known thread continues its conversation"
    );
    assert_eq!(app.session_ids(&conversation).await.len(), 2);

    // Archived on the service, the thread goes on in a new conversation, which its next
    // run continues.
    app.archive(&conversation).await;
    let mut later = Vec::new();
    for run in ["r-archived-1", "r-archived-2"] {
        let events = events(
            app.req(Method::POST, "/api/ag-ui/lister")
                .json(&input(json!([ask]), run))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_well_formed(&events);
        let result = &events.last().unwrap()["result"];
        assert_eq!(result["status"], "committed", "{events:?}");
        later.push(result["conversation_id"].as_str().unwrap().to_owned());
    }
    assert_ne!(later[0], conversation);
    assert_eq!(
        later[0], later[1],
        "the new conversation is the thread's now"
    );

    let (status, _) = app
        .post("/api/ag-ui/ghost", input(json!([ask]), "r-3"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Hostile or broken input is refused with our error shape, and starts nothing.
    for (body, want) in [
        (json!({"messages": []}), StatusCode::BAD_REQUEST),
        (
            json!({"threadId": 7, "runId": "r"}),
            StatusCode::BAD_REQUEST,
        ),
        (input(json!([]), "r-4"), StatusCode::UNPROCESSABLE_ENTITY),
        (
            input(
                json!([{"id": "x", "role": "assistant", "content": "hi"}]),
                "r-5",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, error) = app.post("/api/ag-ui/lister", body.clone()).await;
        assert_eq!(status, want, "{body}: {error}");
    }
    assert_eq!(
        app.session_ids(&conversation).await.len(),
        2,
        "nothing started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_event_stream_speaks_ag_ui_when_asked() {
    let app = TestApp::sqlite().await;
    let body = json!({"preset_id": "default", "input": text_input("hello")});
    let streamed = events(
        app.req(Method::POST, "/api/conversations/run/stream?encoding=ag-ui")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_well_formed(&streamed);
    let text: String = streamed
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: hello");
    let session = streamed[0]["runId"].as_str().unwrap().to_owned();
    let attached = events(
        app.req(
            Method::GET,
            &format!("/api/sessions/{session}/events?encoding=ag-ui"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_well_formed(&attached);
    assert_eq!(without_custom(&attached), without_custom(&streamed));
    let native = app
        .req(Method::GET, &format!("/api/sessions/{session}/events"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        native.contains("event: run_started"),
        "the default stays ours"
    );
}
