//! Attacks on the service's bounds, performed over HTTP as a hostile caller (or a
//! prompt-injected model) would: templates that never end or blow up, floods of steers,
//! huge files through the file tools, and preset text of any length. Each must fail
//! safely: a 4xx with the JSON error shape, a tool error the model can read, nothing
//! written where it should not be.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use mock_llm::Script;

use crate::support::{
    Backend, MockApp, TestApp, call_tool, dialogue, gate_command, open_gate, preset_body,
    shell_call, text_input,
};

/// Creates a preset with the `core` and `filesystem` toolsets working in `work`.
async fn files_preset(app: &TestApp, id: &str, work: &std::path::Path) {
    let (status, body) = app
        .post(
            "/api/presets/create",
            json!({
                "preset_id": id,
                "name": id,
                "model": {"name": "test:echo"},
                "toolsets": [{"toolset_name": "core"}, {"toolset_name": "filesystem"}],
                "environment": {"default_path": work.display().to_string()}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

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

/// Nested loops that take seconds per render without fuel and build a 10 MB prompt.
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

// ------------------------------------------------------------------------ steering

/// Finding 6: 150 steers of 1 MB each grew the service by 1.6 GB. A steer keeps a run
/// input's caps (422), and a session holds at most 32 steers and 16 MiB of them (text and
/// inline images) the run has not taken yet (429 `too_many_steers`); the model receives
/// exactly the queued ones.
#[tokio::test(flavor = "multi_thread")]
async fn a_steer_flood_is_capped_in_size_and_number() {
    const IMAGE_BYTES: usize = 3_000_000;
    let Some(app) = MockApp::start(Backend::Local, &[BIG_BODIES]).await else {
        return;
    };
    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(Script::text("Done.", 2));
    let mut stream = app.run_sse(app.new_run("Wait for the gate")).await;
    let head = stream.until(|e| e.is("tool_call_start")).await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    let by_session = format!("/api/sessions/{session}/steer");
    let by_conversation = format!("/api/conversations/{session}/steer");

    let (status, body) = app
        .post(
            &by_session,
            json!({"input": text_input(&"x".repeat((1 << 20) + 1))}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["input[0].text"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 1048576"),
        "{body}"
    );
    let (status, body) = app
        .post(
            &by_conversation,
            json!({"input": text_input("hi"), "message_id": "m".repeat(257)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["message_id"]);

    // Four steers with a 3 MB image each (4 MB as base64) fit in 16 MiB, a fifth does not;
    // small ones then fill the queue to 32.
    let image = base64::engine::general_purpose::STANDARD.encode(vec![7u8; IMAGE_BYTES]);
    let steer = |i: usize| {
        let mut input = text_input(&format!("steer {i:02}"));
        if i < 4 || i == 99 {
            input.as_array_mut().unwrap().push(
                json!({"type": "binary", "data": image, "mime_type": "image/png", "name": "shot.png"}),
            );
        }
        input
    };
    let post_steer = |i: usize, path: &str| {
        let body = json!({"input": steer(i), "message_id": format!("m{i}")});
        let app = &app;
        let path = path.to_owned();
        async move { app.post(&path, body).await }
    };
    for i in 0..4 {
        let (status, body) = post_steer(i, &by_session).await;
        assert_eq!(status, StatusCode::OK, "steer {i}: {body}");
        assert_eq!(body["queued"], true);
    }
    let (status, body) = post_steer(99, &by_conversation).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_steers", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("16777216 bytes"),
        "{body}"
    );
    for i in 4..32 {
        let path = if i % 2 == 0 {
            &by_session
        } else {
            &by_conversation
        };
        let (status, body) = post_steer(i, path).await;
        assert_eq!(status, StatusCode::OK, "steer {i}: {body}");
        assert_eq!(body["queued"], true);
    }
    for path in [&by_session, &by_conversation] {
        let (status, body) = app
            .post(path, json!({"input": text_input("steer 98")}))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"], "too_many_steers", "{body}");
        assert!(body["message"].as_str().unwrap().contains("32"), "{body}");
    }
    // A retry of a queued message is still recognised as such, without saving it again.
    let (status, body) = post_steer(0, &by_session).await;
    assert_eq!(
        (status, &body["queued"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    let saved = saved_steer_images(&app.work.join(".uploads").join(&session));
    assert_eq!(saved, [IMAGE_BYTES; 4], "one file per queued image steer");

    open_gate(&app.work, "go");
    let events = stream.all().await;
    assert!(events.last().unwrap().is("run_completed"));
    let injected = events.iter().filter(|e| e.is("steering_injected")).count();
    assert_eq!(injected, 32);
    // One user message carries them all, in order, with the four images inline.
    let request = &app.mock.requests()[1];
    let second = dialogue(request);
    let (role, text) = second.last().unwrap();
    assert_eq!(role, "user");
    let steers: Vec<_> = text
        .match_indices("steer ")
        .map(|(at, _)| text[at..at + 8].to_owned())
        .collect();
    let expected: Vec<_> = (0..32).map(|i| format!("steer {i:02}")).collect();
    assert_eq!(steers, expected, "the queued steers, once each, in order");
    let images = request.body.to_string().matches(image.as_str()).count();
    assert_eq!(images, 4, "the queued images, once each");
}

/// The sizes of the files saved by steers under a run's upload directory.
fn saved_steer_images(uploads: &std::path::Path) -> Vec<usize> {
    let mut sizes = Vec::new();
    for dir in std::fs::read_dir(uploads).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("steer-"), "{name}");
        for file in std::fs::read_dir(&dir).unwrap() {
            sizes.push(std::fs::metadata(file.unwrap().path()).unwrap().len() as usize);
        }
    }
    sizes
}

// ------------------------------------------------------------------------ symlink race

/// Finding 9: swapping a directory for a symlink between the policy check and the use let
/// reads, writes and searches land outside. While a thread swaps `work/dir` with a symlink
/// to `outside` (atomically, as fast as it can), the model views, greps, globs and writes
/// under `dir` through the file tools: nothing outside is ever read, listed, written or
/// left behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_swap_race_never_reaches_outside_through_the_tools() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const SECRET: &str = "OUTSIDE-SECRET";
    let app = TestApp::sqlite().await;
    let tree = tempfile::tempdir().unwrap();
    let (work, outside) = (tree.path().join("work"), tree.path().join("outside"));
    std::fs::create_dir_all(work.join("dir")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(work.join("dir/file"), "inside").unwrap();
    std::fs::write(outside.join("file"), SECRET).unwrap();
    std::fs::write(outside.join("secret-name.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(&outside, work.join("swap")).unwrap();
    files_preset(&app, "racer", &work).await;

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (dir, swap, stop) = (work.join("dir"), work.join("swap"), stop.clone());
        std::thread::spawn(move || {
            use rustix::fs::{CWD, RenameFlags, renameat_with};
            let mut flips = 0u64;
            while !stop.load(Ordering::SeqCst) && flips < 50_000_000 {
                if renameat_with(CWD, &dir, CWD, &swap, RenameFlags::EXCHANGE).is_err() {
                    break;
                }
                flips += 1;
            }
            flips
        })
    };
    let mut leaks = Vec::new();
    for i in 0..40 {
        let calls = [
            ("view", json!({"path": "dir/file"})),
            // A pattern that does not spell the secret: only a match shows it.
            ("grep", json!({"pattern": "OUTSIDE-SECR[E]T"})),
            ("glob", json!({"pattern": "**/*"})),
            ("ls", json!({"path": "dir"})),
            (
                "write",
                json!({"path": "dir/file", "content": format!("inside {i}")}),
            ),
            (
                "copy",
                json!({"source": "dir/file", "destination": format!("copy-{i}")}),
            ),
        ];
        for (tool, args) in calls {
            let (output, _) = call_tool(&app, "racer", tool, args).await;
            if output.contains(SECRET) || output.contains("secret-name") {
                leaks.push(format!("{tool} {i}: {output}"));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    assert!(flipper.join().unwrap() > 0);

    let mut outside_now: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside_now.sort();
    let copied_secret = (0..40).any(|i| {
        std::fs::read_to_string(work.join(format!("copy-{i}"))).is_ok_and(|t| t.contains(SECRET))
    });
    assert!(
        leaks.is_empty()
            && outside_now == ["file", "secret-name.txt"]
            && std::fs::read_to_string(outside.join("file")).unwrap() == SECRET
            && !copied_secret,
        "escaped: {} leaks {leaks:?}, outside now {outside_now:?}, copied the secret: \
         {copied_secret}",
        leaks.len()
    );
}

// ------------------------------------------------------------------------ file tools

/// Finding 7: `view` read a whole 1 GB file to show a few lines, and `edit replace_all`
/// turned 60 KB of arguments into a 500 MB file. With `MAX_FILE_BYTES` at 64 KiB: `view`
/// streams its window and reads no further than the cap, `edit`/`multi_edit` refuse larger
/// files and results over the cap, `write` refuses larger contents; each is a tool error
/// the model can read, and no file changes.
#[tokio::test(flavor = "multi_thread")]
async fn file_tools_stay_within_the_file_cap() {
    let app = TestApp::with_vars(&[BIG_BODIES, ("MAX_FILE_BYTES", "65536")]).await;
    let tree = tempfile::tempdir().unwrap();
    let work = tree.path().to_path_buf();
    files_preset(&app, "files", &work).await;
    let log: String = (1..=200_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(work.join("big.log"), &log).unwrap();
    std::fs::write(work.join("small.txt"), "x".repeat(1000)).unwrap();

    // view: the window, found without reading on; nothing past the cap.
    let (out, is_error) = call_tool(
        &app,
        "files",
        "view",
        json!({"path": "big.log", "offset": 3, "limit": 2}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert_eq!(
        out,
        "     3\tline 3\n     4\tline 4\n[showing lines 3-4; more follow: use offset=5 to read on]"
    );
    let (out, _) = call_tool(
        &app,
        "files",
        "view",
        json!({"path": "big.log", "offset": 150_000, "limit": 2}),
    )
    .await;
    assert!(!out.contains("\tline 150000"), "{out}");
    assert!(out.contains("at most the first 65536 bytes"), "{out}");

    // edit / multi_edit: a file over the cap is not read; a result over it not written.
    let refused = [
        (
            "edit",
            json!({"path": "big.log", "old_string": "line 1\n", "new_string": "first\n"}),
            "larger than 65536 bytes",
        ),
        (
            "edit",
            json!({"path": "small.txt", "old_string": "x", "new_string": "y".repeat(100),
                   "replace_all": true}),
            "the result would be 100000 bytes",
        ),
        (
            "multi_edit",
            json!({"path": "small.txt", "edits": [
                {"old_string": "x", "new_string": "yy", "replace_all": true},
                {"old_string": "y", "new_string": "z".repeat(50), "replace_all": true}
            ]}),
            "the result would be 100000 bytes",
        ),
        (
            "write",
            json!({"path": "new.txt", "content": "w".repeat(65537)}),
            "would be 65537 bytes",
        ),
    ];
    for (tool, args, expected) in refused {
        let (out, is_error) = call_tool(&app, "files", tool, args).await;
        assert!(is_error, "{tool}: {out}");
        assert!(out.contains(expected), "{tool}: {out}");
    }
    assert_eq!(std::fs::read_to_string(work.join("big.log")).unwrap(), log);
    assert_eq!(
        std::fs::read_to_string(work.join("small.txt")).unwrap(),
        "x".repeat(1000)
    );
    assert!(!work.join("new.txt").exists());

    // Within the cap everything still works.
    let (out, is_error) = call_tool(
        &app,
        "files",
        "edit",
        json!({"path": "small.txt", "old_string": "x", "new_string": "yy", "replace_all": true}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert_eq!(std::fs::read(work.join("small.txt")).unwrap().len(), 2000);
}

// ------------------------------------------------------------------------ preset text

/// Finding 10 (part): a preset with a 9 MB name was stored and served back. Every preset
/// text field and list, and a conversation's title, has a cap: 422 naming the field,
/// without echoing the value or storing anything.
#[tokio::test(flavor = "multi_thread")]
async fn preset_and_title_text_is_capped() {
    let app = TestApp::with_vars(&[BIG_BODIES]).await;
    let huge = "n".repeat(1 << 20);
    let cases = [
        ("name", json!({"name": huge})),
        ("description", json!({"description": "d".repeat(4001)})),
        (
            "subagents.refs[0].instruction",
            json!({"subagents": {"refs": [{"preset_id": "default", "name": "w",
                    "instruction": "i".repeat(16_001)}]}}),
        ),
        (
            "subagents.refs[0].description",
            json!({"subagents": {"refs": [{"preset_id": "default", "name": "w",
                    "description": huge}]}}),
        ),
        (
            "toolsets[0].exclude_tools[0]",
            json!({"toolsets": [{"toolset_name": "core", "exclude_tools": [huge]}]}),
        ),
        (
            "tool_config.require_approval",
            json!({"tool_config": {"require_approval": vec!["shell"; 65]}}),
        ),
    ];
    for (field, patch) in cases {
        let mut body = preset_body("capped");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let resp = app
            .req(reqwest::Method::POST, "/api/presets/create")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {text:.300}"
        );
        assert!(
            text.len() < 2000,
            "{field}: the answer echoes the value: {text:.300}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fields(&body), [field], "{body}");
    }
    let (status, body) = app
        .post("/api/presets/default/update", json!({"name": huge}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["name"]);
    let (_, list) = app.get("/api/presets/list").await;
    assert_eq!(
        list["presets"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );
    assert_eq!(list["presets"][0]["name"], "Default agent");

    // At the cap is fine (characters, not bytes).
    let mut body = preset_body("at-cap");
    body["name"] = "é".repeat(200).into();
    let (status, created) = app.post("/api/presets/create", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");

    // A conversation's title.
    let events = app
        .run_sse(json!({"input": text_input("hi")}))
        .await
        .all()
        .await;
    let conversation = events[0].payload()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/conversations/{conversation}/update");
    let (status, body) = app.post(&path, json!({"title": "t".repeat(501)})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["title"]);
    let (status, body) = app.post(&path, json!({"title": "t".repeat(500)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["title"].as_str().unwrap().len(), 500);
}
