//! Attacks on the service's bounds, performed over HTTP as a hostile caller (or a
//! prompt-injected model) would: templates that never end or blow up, floods of steers,
//! huge files through the file tools, and preset text of any length. Each must fail
//! safely: a 4xx with the JSON error shape, a tool error the model can read, nothing
//! written where it should not be.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, preset_body, text_input};

/// Bodies up to 4 MiB, so the caps under test (not the body cap) refuse the requests.
const BIG_BODIES: (&str, &str) = ("MAX_BODY_BYTES", "4194304");

fn fields(body: &Value) -> Vec<String> {
    body["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no field errors in {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// Nested loops that would take minutes and build a 10 MB prompt;
const TEMPLATE_BOMB: &str = "{% for a in range(100000) %}{% for b in range(100) %}\
    {{ a }}-{{ b }} {% endfor %}{% endfor %}";

/// A prompt that renders quickly but to more than the output cap (256 KiB).
const HUGE_PROMPT: &str = "{% for a in range(3000) %}{{ 'x' * 100 }}{% endfor %}";

// ------------------------------------------------------------------------ templates

/// Finding 5: a system prompt template is rendered with fuel and an output cap, off the
/// async workers. A template that never ends or renders a huge prompt is a 422 naming the
/// field it came from, before any session exists, and the service keeps answering.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_templates_are_refused_before_a_session_exists() {
    let app = TestApp::with_vars(&[BIG_BODIES]).await;
    let mut preset = preset_body("bomb");
    preset["system_prompt"] = TEMPLATE_BOMB.into();
    let (status, body) = app.post("/api/presets/create", preset).await;
    assert_eq!(status, StatusCode::OK, "it parses: {body}");

    // Several at once: the renders are bounded, and health answers meanwhile.
    let runs = (0..6).map(|_| {
        app.post(
            "/api/conversations/run",
            json!({"preset_id": "bomb", "input": text_input("hi")}),
        )
    });
    let (answers, (health, _)) = tokio::join!(futures::future::join_all(runs), app.health());
    assert_eq!(health, StatusCode::OK);
    for (status, body) in answers {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"], "validation_failed");
        assert_eq!(fields(&body), ["system_prompt"], "{body}");
        let message = body["details"]["fields"][0]["message"].as_str().unwrap();
        assert!(message.contains("step limit"), "{message}");
    }

    // The same from a run's config_override, and a prompt over the output cap.
    for (template, expected) in [
        (TEMPLATE_BOMB, "step limit"),
        (HUGE_PROMPT, "more than 262144 bytes"),
    ] {
        let (status, body) = app
            .post(
                "/api/conversations/run",
                json!({
                    "preset_id": "default",
                    "config_override": {"system_prompt": template},
                    "input": text_input("hi")
                }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&body), ["config_override.system_prompt"], "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{body}"
        );
    }
    let (_, list) = app.get("/api/conversations/list").await;
    assert_eq!(list["conversations"], json!([]), "no session was created");

    // The template's own length is capped at create, update and in config_override.
    let long = "x".repeat(128 * 1024 + 1);
    let mut preset = preset_body("long");
    preset["system_prompt"] = long.clone().into();
    let (status, body) = app.post("/api/presets/create", preset).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["system_prompt"]);
    let (status, body) = app
        .post(
            "/api/presets/bomb/update",
            json!({"system_prompt": long.clone()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["system_prompt"]);
    let (status, body) = app
        .post(
            "/api/conversations/run",
            json!({"config_override": {"system_prompt": long}, "input": text_input("hi")}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["config_override.system_prompt"]);
}
