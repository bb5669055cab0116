//! Every built-in tool on a real temporary directory.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Bench, local_env};

#[tokio::test]
async fn edit_requires_a_unique_match_and_leaves_the_file_alone_otherwise() {
    let b = Bench::new();
    b.put("a.txt", "let x = 1;\nlet y = 1;\n");
    let err = b
        .call(
            "edit",
            json!({"path": "a.txt", "old_string": "= 1;", "new_string": "= 2;"}),
        )
        .await
        .unwrap_err();
    assert!(err.contains("occurs 2 times"), "{err}");
    assert_eq!(b.read("a.txt"), "let x = 1;\nlet y = 1;\n");

    let ok = b
        .call(
            "edit",
            json!({"path": "a.txt", "old_string": "y = 1", "new_string": "y = 2"}),
        )
        .await
        .unwrap();
    assert_eq!(ok, "Edited a.txt: 1 replacement");
    assert_eq!(b.read("a.txt"), "let x = 1;\nlet y = 2;\n");

    b.call(
        "edit",
        json!({"path": "a.txt", "old_string": "let", "new_string": "const", "replace_all": true}),
    )
    .await
    .unwrap();
    assert_eq!(b.read("a.txt"), "const x = 1;\nconst y = 2;\n");
    let missing = b
        .call(
            "edit",
            json!({"path": "a.txt", "old_string": "nope", "new_string": "x"}),
        )
        .await
        .unwrap_err();
    assert!(missing.contains("not found"), "{missing}");
}

#[tokio::test]
async fn multi_edit_is_all_or_nothing() {
    let b = Bench::new();
    b.put("m.rs", "fn a() {}\nfn b() {}\n");
    let err = b
        .call(
            "multi_edit",
            json!({"path": "m.rs", "edits": [
                {"old_string": "fn a", "new_string": "fn alpha"},
                {"old_string": "fn missing", "new_string": "fn x"}
            ]}),
        )
        .await
        .unwrap_err();
    assert!(
        err.starts_with("edit 2 of 2 failed, file left unchanged"),
        "{err}"
    );
    assert_eq!(b.read("m.rs"), "fn a() {}\nfn b() {}\n");

    // Each edit sees the previous one's result.
    b.call(
        "multi_edit",
        json!({"path": "m.rs", "edits": [
            {"old_string": "fn a", "new_string": "fn alpha"},
            {"old_string": "fn alpha() {}", "new_string": "fn alpha() { b() }"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(b.read("m.rs"), "fn alpha() { b() }\nfn b() {}\n");
}

#[tokio::test]
async fn view_numbers_lines_pages_and_returns_images() {
    let b = Bench::new();
    let text: String = (1..=5).map(|i| format!("line {i}\n")).collect();
    b.put("f.txt", &text);
    let out = b
        .call("view", json!({"path": "f.txt", "offset": 2, "limit": 2}))
        .await
        .unwrap();
    // The read stops after the window: the total is not known yet.
    assert_eq!(
        out,
        "     2\tline 2\n     3\tline 3\n[showing lines 2-3; more follow: use offset=4 to read on]"
    );
    let out = b
        .call("view", json!({"path": "f.txt", "offset": 4, "limit": 2}))
        .await
        .unwrap();
    assert_eq!(out, "     4\tline 4\n     5\tline 5\n");
    std::fs::write(b.path("pic.png"), [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    let tool = b.tools.get("view").unwrap();
    let image = tool
        .call(&b.ctx(), &json!({"path": "pic.png"}).to_string())
        .await
        .unwrap();
    assert_eq!(image.images.len(), 1);
    assert_eq!(image.images[0].mime_type, "image/png");
    assert_eq!(image.images[0].data, "iVBORwABAg==");
    std::fs::write(b.path("blob.bin"), [1, 0, 2]).unwrap();
    let err = b
        .call("view", json!({"path": "blob.bin"}))
        .await
        .unwrap_err();
    assert!(err.contains("binary file"), "{err}");
}

#[tokio::test]
async fn write_ls_mkdir_move_and_copy_change_the_disk() {
    let b = Bench::new();
    b.call(
        "write",
        json!({"path": "deep/er/new.txt", "content": "hello"}),
    )
    .await
    .unwrap();
    assert_eq!(b.read("deep/er/new.txt"), "hello");
    b.call("mkdir", json!({"path": "empty/dir"})).await.unwrap();
    let ls = b.call("ls", json!({})).await.unwrap();
    assert_eq!(ls, "deep/\nempty/\n");
    let ls = b.call("ls", json!({"path": "deep/er"})).await.unwrap();
    assert_eq!(ls, "new.txt (5 bytes)\n");

    b.call("copy", json!({"source": "deep", "destination": "deep2"}))
        .await
        .unwrap();
    assert_eq!(b.read("deep2/er/new.txt"), "hello");
    let err = b
        .call("move", json!({"source": "deep2", "destination": "deep"}))
        .await
        .unwrap_err();
    assert!(err.contains("already exists"), "{err}");
    b.call(
        "move",
        json!({"source": "deep2/er/new.txt", "destination": "moved.txt"}),
    )
    .await
    .unwrap();
    assert_eq!(b.read("moved.txt"), "hello");
    assert!(!b.path("deep2/er/new.txt").exists());
}

#[tokio::test]
async fn glob_and_grep_honour_gitignore() {
    let b = Bench::new();
    b.put(".gitignore", "target/\n*.log\n");
    b.put("src/main.rs", "fn main() { println!(\"Hello\"); }\n");
    b.put("src/lib.rs", "pub fn hello() {}\n");
    b.put("target/gen.rs", "fn hello_generated() {}\n");
    b.put("debug.log", "hello from the log\n");

    let glob = b.call("glob", json!({"pattern": "**/*.rs"})).await.unwrap();
    assert_eq!(glob, "src/lib.rs\nsrc/main.rs");
    let grep = b
        .call(
            "grep",
            json!({"pattern": "hello", "case_insensitive": true}),
        )
        .await
        .unwrap();
    let mut lines: Vec<_> = grep.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "src/lib.rs:1: pub fn hello() {}",
            "src/main.rs:1: fn main() { println!(\"Hello\"); }"
        ]
    );
    let only_lib = b
        .call("grep", json!({"pattern": "fn", "include": "lib.rs"}))
        .await
        .unwrap();
    assert_eq!(only_lib, "src/lib.rs:1: pub fn hello() {}\n");
    let bad = b.call("grep", json!({"pattern": "("})).await.unwrap_err();
    assert!(bad.starts_with("invalid pattern"), "{bad}");
}

#[tokio::test]
async fn every_escape_from_the_working_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s3cret").unwrap();
    let b = Bench::new();
    std::os::unix::fs::symlink(outside.path(), b.path("link")).unwrap();
    let secret = outside.path().join("secret.txt");
    let attempts = [
        ("view", json!({"path": secret.to_str().unwrap()})),
        ("view", json!({"path": "../secret.txt"})),
        ("view", json!({"path": "a/../../secret.txt"})),
        ("view", json!({"path": "link/secret.txt"})),
        ("write", json!({"path": "link/new.txt", "content": "x"})),
        ("ls", json!({"path": "link"})),
        ("glob", json!({"pattern": "*", "path": "link"})),
        ("grep", json!({"pattern": "s3cret", "path": "link"})),
        (
            "copy",
            json!({"source": "link/secret.txt", "destination": "stolen.txt"}),
        ),
        ("shell", json!({"command": "pwd", "cwd": "link"})),
    ];
    for (tool, args) in attempts {
        let err = b.call(tool, args.clone()).await.unwrap_err();
        assert!(err.starts_with("access denied"), "{tool} {args}: {err}");
    }
    assert!(!outside.path().join("new.txt").exists());
    // A search from the root does not follow the link out either.
    let grep = b.call("grep", json!({"pattern": "s3cret"})).await.unwrap();
    assert_eq!(grep, "no matches for s3cret");
}

#[tokio::test]
async fn the_shell_sees_only_its_allowed_environment() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ports::EnvironmentSpec {
        env_allow: vec!["EDITOR".into(), "OPENAI_API_KEY".into()],
        ..Default::default()
    };
    // The service's environment as the shell would read it, secret included.
    let env = local_env(dir.path(), &spec, |name| match name {
        "PATH" => std::env::var("PATH").ok(),
        "EDITOR" => Some("vi".into()),
        "OPENAI_API_KEY" => Some("sk-live-secret".into()),
        _ => None,
    });
    let b = Bench::with_env(dir, env);
    let out = b.call("shell", json!({"command": "env"})).await.unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stdout = report["stdout"].as_str().unwrap();
    assert!(stdout.contains("EDITOR=vi"), "{stdout}");
    assert!(!stdout.contains("sk-live-secret"), "{stdout}");
    // Cargo sets this for the test process; a leak of the service environment shows it.
    assert!(!stdout.contains("CARGO_PKG_NAME"), "{stdout}");
    assert_eq!(report["exit_code"], 0);
}

#[tokio::test]
async fn a_shell_timeout_kills_the_command_and_its_children() {
    let b = Bench::new();
    let started = Instant::now();
    let out = b
        .call(
            "shell",
            json!({"command": "sleep 30 & echo $! > child.pid; sleep 30", "timeout_secs": 1}),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.contains("\"timed_out\":true"), "{out}");
    assert!(out.ends_with("[killed after 1 s timeout]"), "{out}");
    let pid = b.read("child.pid").trim().to_owned();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Gone, or a zombie waiting for init to reap it.
    assert!(
        status.is_empty() || status.split_whitespace().nth(2) == Some("Z"),
        "background child {pid} survived: {status}"
    );
}

#[tokio::test]
async fn task_and_context_tools_keep_state_for_the_run() {
    let b = Bench::new();
    let created = b
        .call(
            "task_create",
            json!({"subject": "write docs", "description": "README"}),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&created).unwrap(),
        json!({"id": "1", "subject": "write docs", "description": "README", "status": "pending"})
    );
    b.call("task_create", json!({"subject": "ship"}))
        .await
        .unwrap();
    b.call("task_update", json!({"id": "1", "status": "completed"}))
        .await
        .unwrap();
    let list = b.call("task_list", json!({})).await.unwrap();
    assert_eq!(list, "1. [completed] write docs\n2. [pending] ship");
    let err = b.call("task_get", json!({"id": "9"})).await.unwrap_err();
    assert_eq!(err, "no task with id 9");
    let noted = b
        .call("thinking", json!({"thought": "plan"}))
        .await
        .unwrap();
    assert_eq!(noted, "Noted (4 characters).");
}
