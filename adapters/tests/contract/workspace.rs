//! `ports::Workspace` contract against the real filesystem: `LocalWorkspace` in a temp
//! tree with an outside directory, an allowed path, and symlinks pointing in and out.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use adapters::workspace::LocalWorkspace;
use ports::{GrepRequest, LineWindow, Workspace, WorkspaceError};

/// ```text
/// root/
///   wd/                  the working directory
///     sub/inner.txt
///     link_in  -> wd/sub            (inside: usable)
///     link_out -> root/outside      (outside: refused)
///     secret_link -> root/outside/secret.txt
///   outside/secret.txt   "SECRET"
///   shared/              an allowed path
/// ```
struct Tree {
    _root: tempfile::TempDir,
    wd: PathBuf,
    outside: PathBuf,
    shared: PathBuf,
}

fn tree() -> Tree {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().canonicalize().unwrap();
    let wd = base.join("wd");
    let outside = base.join("outside");
    let shared = base.join("shared");
    for dir in [&wd, &outside, &shared, &wd.join("sub")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(outside.join("secret.txt"), "SECRET\n").unwrap();
    std::fs::write(wd.join("sub/inner.txt"), "inner\n").unwrap();
    symlink(wd.join("sub"), wd.join("link_in")).unwrap();
    symlink(&outside, wd.join("link_out")).unwrap();
    symlink(outside.join("secret.txt"), wd.join("secret_link")).unwrap();
    Tree {
        _root: root,
        wd,
        outside,
        shared,
    }
}

fn workspace(t: &Tree) -> LocalWorkspace {
    LocalWorkspace::new(&t.wd, std::slice::from_ref(&t.shared), None).unwrap()
}

/// A whole file, as the tools read one.
async fn read(ws: &LocalWorkspace, path: &str) -> Result<Vec<u8>, WorkspaceError> {
    ws.read_capped(path, 1 << 20).await
}

fn grep_request(pattern: &str) -> GrepRequest {
    GrepRequest {
        pattern: pattern.to_owned(),
        path: ".".to_owned(),
        include: None,
        case_insensitive: false,
        max_matches: 100,
    }
}

fn outside(result: Result<impl std::fmt::Debug, WorkspaceError>) {
    match result {
        Err(WorkspaceError::OutsideAllowed(_)) => {}
        other => panic!("expected OutsideAllowed, got {other:?}"),
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- files

#[tokio::test]
async fn read_write_round_trip() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("notes.txt", b"hello\n".to_vec()).await.unwrap();
    assert_eq!(read(&ws, "notes.txt").await.unwrap(), b"hello\n");
    assert_eq!(
        read(&ws, t.wd.join("notes.txt").to_str().unwrap())
            .await
            .unwrap(),
        b"hello\n"
    );
    ws.write("notes.txt", b"replaced".to_vec()).await.unwrap();
    assert_eq!(read(&ws, "./sub/../notes.txt").await.unwrap(), b"replaced");
    let info = ws.stat("notes.txt").await.unwrap();
    assert!(!info.is_dir);
    assert_eq!(info.size, 8);
    assert_eq!(ws.working_dir(), t.wd.to_str().unwrap());
}

#[tokio::test]
async fn missing_and_wrong_kinds_are_reported() {
    let t = tree();
    let ws = workspace(&t);
    assert_eq!(
        read(&ws, "nope.txt").await,
        Err(WorkspaceError::NotFound("nope.txt".into()))
    );
    assert_eq!(
        ws.stat("nope").await,
        Err(WorkspaceError::NotFound("nope".into()))
    );
    assert_eq!(
        read(&ws, "sub").await,
        Err(WorkspaceError::IsADirectory("sub".into()))
    );
    assert_eq!(
        ws.write("sub", b"x".to_vec()).await,
        Err(WorkspaceError::IsADirectory("sub".into()))
    );
    assert_eq!(
        ws.list("sub/inner.txt").await,
        Err(WorkspaceError::NotADirectory("sub/inner.txt".into()))
    );
    assert!(ws.stat(".").await.unwrap().is_dir);
}

#[tokio::test]
async fn write_creates_parents_and_leaves_no_temp_files() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("a/b/c/deep.txt", b"deep".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(t.wd.join("a/b/c/deep.txt")).unwrap(), b"deep");
    ws.write("a/b/c/deep.txt", b"again".to_vec()).await.unwrap();
    assert_eq!(files_under(&t.wd.join("a/b/c")), ["deep.txt"]);
    // A file where a directory is needed.
    assert!(matches!(
        ws.write("sub/inner.txt/x", b"x".to_vec()).await,
        Err(WorkspaceError::NotADirectory(_))
    ));
}

#[tokio::test]
async fn write_is_atomic_for_concurrent_readers() {
    let t = tree();
    let ws = workspace(&t);
    let size = 256 * 1024;
    ws.write("big.bin", vec![b'a'; size]).await.unwrap();
    let path = t.wd.join("big.bin");
    let reader = std::thread::spawn(move || {
        for _ in 0..300 {
            let data = std::fs::read(&path).unwrap();
            assert_eq!(data.len(), size);
            assert!(data.iter().all(|b| *b == data[0]), "torn read");
        }
    });
    for i in 0..40u8 {
        let byte = if i % 2 == 0 { b'b' } else { b'a' };
        ws.write("big.bin", vec![byte; size]).await.unwrap();
    }
    reader.join().unwrap();
}

#[tokio::test]
async fn write_keeps_the_permissions_of_the_replaced_file() {
    use std::os::unix::fs::PermissionsExt;
    let t = tree();
    let ws = workspace(&t);
    let script = t.wd.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.write("run.sh", b"#!/bin/sh\necho hi\n".to_vec())
        .await
        .unwrap();
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn list_is_sorted_with_kinds_and_sizes() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("b.txt", b"12345".to_vec()).await.unwrap();
    ws.write("a.txt", b"1".to_vec()).await.unwrap();
    let entries = ws.list(".").await.unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    // link_out and secret_link point outside: not listed.
    assert_eq!(names, ["a.txt", "b.txt", "link_in", "sub"]);
    let b = entries.iter().find(|e| e.name == "b.txt").unwrap();
    assert_eq!((b.is_dir, b.size), (false, 5));
    let sub = entries.iter().find(|e| e.name == "sub").unwrap();
    assert_eq!((sub.is_dir, sub.size), (true, 0));
    assert!(entries.iter().find(|e| e.name == "link_in").unwrap().is_dir);
}

#[tokio::test]
async fn create_dir_is_mkdir_p() {
    let t = tree();
    let ws = workspace(&t);
    ws.create_dir("x/y/z").await.unwrap();
    assert!(t.wd.join("x/y/z").is_dir());
    ws.create_dir("x/y").await.unwrap();
    assert!(matches!(
        ws.create_dir("sub/inner.txt").await,
        Err(WorkspaceError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn rename_moves_and_refuses_existing_targets() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("from.txt", b"data".to_vec()).await.unwrap();
    ws.write("taken.txt", b"keep".to_vec()).await.unwrap();
    assert_eq!(
        ws.rename("from.txt", "taken.txt").await,
        Err(WorkspaceError::AlreadyExists("taken.txt".into()))
    );
    assert_eq!(read(&ws, "taken.txt").await.unwrap(), b"keep");
    ws.rename("from.txt", "moved/to.txt").await.unwrap();
    assert_eq!(read(&ws, "moved/to.txt").await.unwrap(), b"data");
    assert!(matches!(
        ws.stat("from.txt").await,
        Err(WorkspaceError::NotFound(_))
    ));
    ws.rename("moved", "moved2").await.unwrap();
    assert!(ws.stat("moved2/to.txt").await.is_ok());
    assert!(matches!(
        ws.rename("nope", "x").await,
        Err(WorkspaceError::NotFound(_))
    ));
    assert!(ws.rename("moved2", "moved2/inside").await.is_err());
    assert!(ws.rename(".", "elsewhere").await.is_err());
    assert!(t.wd.is_dir());
    // A symlink is moved as itself.
    ws.rename("link_in", "link_in2").await.unwrap();
    assert!(
        std::fs::symlink_metadata(t.wd.join("link_in2"))
            .unwrap()
            .is_symlink()
    );
    assert!(t.wd.join("sub/inner.txt").is_file());
}

#[tokio::test]
async fn remove_takes_files_trees_and_links_as_themselves() {
    let t = tree();
    let ws = workspace(&t);
    ws.write(".uploads/s1/a.txt", b"a".to_vec()).await.unwrap();
    ws.write(".uploads/s1/steer-1/b.txt", b"b".to_vec())
        .await
        .unwrap();
    ws.write(".uploads/s2/c.txt", b"c".to_vec()).await.unwrap();
    ws.remove(".uploads/s1").await.unwrap();
    assert_eq!(files_under(&t.wd.join(".uploads")), ["s2"]);
    ws.remove(".uploads/s2/c.txt").await.unwrap();
    assert!(t.wd.join(".uploads/s2").is_dir());
    assert!(matches!(
        ws.remove(".uploads/s1").await,
        Err(WorkspaceError::NotFound(_))
    ));
    // Links go as themselves; what they point to stays.
    ws.remove("link_in").await.unwrap();
    ws.remove("link_out").await.unwrap();
    assert!(t.wd.join("sub/inner.txt").is_file());
    assert_eq!(files_under(&t.outside), ["secret.txt"]);
    // Roots and anything outside are refused.
    assert!(ws.remove(".").await.is_err());
    assert!(ws.remove(t.shared.to_str().unwrap()).await.is_err());
    assert!(t.wd.is_dir() && t.shared.is_dir());
}

#[tokio::test]
async fn remove_never_reaches_outside() {
    let t = tree();
    let ws = workspace(&t);
    let secret = t.outside.join("secret.txt");
    outside(ws.remove(secret.to_str().unwrap()).await);
    outside(ws.remove("../outside").await);
    outside(ws.remove("link_out/secret.txt").await);
    outside(ws.remove("sub/../../outside/secret.txt").await);
    assert_eq!(files_under(&t.outside), ["secret.txt"]);
}

#[tokio::test]
async fn copy_files_and_directories_refusing_existing_targets() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("tree/a.txt", b"a".to_vec()).await.unwrap();
    ws.write("tree/nested/b.txt", b"b".to_vec()).await.unwrap();
    ws.copy("tree/a.txt", "a-copy.txt").await.unwrap();
    assert_eq!(read(&ws, "a-copy.txt").await.unwrap(), b"a");
    assert_eq!(
        ws.copy("tree/a.txt", "a-copy.txt").await,
        Err(WorkspaceError::AlreadyExists("a-copy.txt".into()))
    );
    ws.copy("tree", "tree2").await.unwrap();
    assert_eq!(read(&ws, "tree2/a.txt").await.unwrap(), b"a");
    assert_eq!(read(&ws, "tree2/nested/b.txt").await.unwrap(), b"b");
    assert_eq!(read(&ws, "tree/a.txt").await.unwrap(), b"a", "source kept");
    assert!(matches!(
        ws.copy("tree", "tree").await,
        Err(WorkspaceError::AlreadyExists(_))
    ));
    assert!(ws.copy("tree", "tree/inside").await.is_err());
    assert!(matches!(
        ws.copy("nope", "x").await,
        Err(WorkspaceError::NotFound(_))
    ));
}

#[tokio::test]
async fn copies_follow_symlinks_only_to_allowed_files_and_moves_keep_them() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("tree/a.txt", b"a".to_vec()).await.unwrap();
    symlink(t.wd.join("tree/a.txt"), t.wd.join("tree/to-file")).unwrap();
    symlink(t.wd.join("sub"), t.wd.join("tree/to-dir")).unwrap();
    symlink(t.outside.join("secret.txt"), t.wd.join("tree/to-secret")).unwrap();
    ws.copy("tree", "tree2").await.unwrap();
    assert_eq!(files_under(&t.wd.join("tree2")), ["a.txt", "to-file"]);
    let copied = t.wd.join("tree2/to-file");
    assert!(!std::fs::symlink_metadata(&copied).unwrap().is_symlink());
    assert_eq!(std::fs::read(&copied).unwrap(), b"a");
    // A link named directly is copied as its (allowed) target's contents.
    ws.copy("tree/to-file", "single.txt").await.unwrap();
    assert!(
        !std::fs::symlink_metadata(t.wd.join("single.txt"))
            .unwrap()
            .is_symlink()
    );
    // A moved tree keeps its links as links, wherever they point.
    ws.rename("tree", "tree3").await.unwrap();
    assert!(
        std::fs::symlink_metadata(t.wd.join("tree3/to-secret"))
            .unwrap()
            .is_symlink()
    );
    outside(read(&ws, "tree3/to-secret").await);
}

// ---------------------------------------------------------------- bounded reads

#[tokio::test]
async fn read_capped_refuses_files_over_the_cap_and_special_files() {
    let t = tree();
    let ws = workspace(&t);
    ws.write("ten.txt", b"0123456789".to_vec()).await.unwrap();
    assert_eq!(ws.read_capped("ten.txt", 10).await.unwrap(), b"0123456789");
    assert_eq!(
        ws.read_capped("ten.txt", 9).await,
        Err(WorkspaceError::TooLarge {
            path: "ten.txt".into(),
            max: 9
        })
    );
    assert_eq!(
        ws.read_capped("sub", 10).await,
        Err(WorkspaceError::IsADirectory("sub".into()))
    );
    // A FIFO is refused, never opened (opening it would block).
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        t.wd.join("fifo"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    assert!(matches!(
        ws.read_capped("fifo", 10).await,
        Err(WorkspaceError::Io(_))
    ));
    assert!(matches!(
        ws.read_lines("fifo", window(1, 10)).await,
        Err(WorkspaceError::Io(_))
    ));
}

fn window(offset: u64, limit: usize) -> LineWindow {
    LineWindow {
        offset,
        limit,
        max_bytes: 64 * 1024,
        max_line_bytes: 100,
        max_scan_bytes: 64 << 20,
    }
}

#[tokio::test]
async fn read_lines_streams_a_window_of_a_large_file() {
    let t = tree();
    let ws = workspace(&t);
    let text: String = (1..=100_000).map(|i| format!("line {i}\n")).collect();
    ws.write("many.txt", text.into_bytes()).await.unwrap();
    let got = ws.read_lines("many.txt", window(50_000, 3)).await.unwrap();
    let lines: Vec<_> = got.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(lines, ["line 50000", "line 50001", "line 50002"]);
    assert!(got.more && got.total.is_none() && !got.binary);
    let end = ws.read_lines("many.txt", window(99_999, 10)).await.unwrap();
    assert_eq!(end.lines.len(), 2);
    assert_eq!((end.more, end.total), (false, Some(100_000)));

    // One 2 MB line: only its first bytes are kept.
    ws.write("one-line.txt", vec![b'z'; 2 << 20]).await.unwrap();
    let got = ws.read_lines("one-line.txt", window(1, 5)).await.unwrap();
    assert_eq!(got.lines.len(), 1);
    assert_eq!(got.lines[0].text.len(), 100);
    assert!(got.lines[0].cut);
    // The scan cap stops the read of a file without line endings.
    let capped = LineWindow {
        max_scan_bytes: 4096,
        ..window(2, 5)
    };
    let got = ws.read_lines("one-line.txt", capped).await.unwrap();
    assert!(got.lines.is_empty() && got.scan_capped && got.more);
    outside(ws.read_lines("secret_link", window(1, 5)).await);
    outside(ws.read_capped("secret_link", 100).await);
}

// ---------------------------------------------------------------- escapes

#[tokio::test]
async fn paths_outside_are_refused() {
    let t = tree();
    let ws = workspace(&t);
    let secret = t.outside.join("secret.txt");
    let secret = secret.to_str().unwrap();
    outside(read(&ws, secret).await);
    outside(read(&ws, "../outside/secret.txt").await);
    outside(read(&ws, "sub/../../outside/secret.txt").await);
    outside(read(&ws, "/etc/passwd").await);
    outside(ws.write("../escape.txt", b"x".to_vec()).await);
    outside(ws.write("a/../../escape.txt", b"x".to_vec()).await);
    outside(ws.stat("..").await);
    outside(ws.list("..").await);
    outside(ws.create_dir("../newdir").await);
    outside(ws.copy(secret, "stolen.txt").await);
    outside(ws.copy("sub/inner.txt", "../leak.txt").await);
    outside(ws.rename("sub/inner.txt", "../leak.txt").await);
    outside(ws.glob("*", "..", 10).await);
    let mut req = grep_request("SECRET");
    req.path = "..".into();
    outside(ws.grep(req).await);
    outside(ws.shell_dir("..").await);
    assert!(!t.wd.parent().unwrap().join("escape.txt").exists());
    assert!(!t.wd.parent().unwrap().join("newdir").exists());
    assert!(!t.wd.parent().unwrap().join("leak.txt").exists());
}

#[tokio::test]
async fn symlinks_pointing_outside_are_refused() {
    let t = tree();
    let ws = workspace(&t);
    outside(read(&ws, "secret_link").await);
    outside(read(&ws, "link_out/secret.txt").await);
    outside(ws.stat("link_out").await);
    outside(ws.list("link_out").await);
    outside(ws.write("secret_link", b"pwned".to_vec()).await);
    outside(ws.write("link_out/new.txt", b"pwned".to_vec()).await);
    outside(ws.write("link_out/deeper/new.txt", b"pwned".to_vec()).await);
    outside(ws.create_dir("link_out/newdir").await);
    outside(ws.copy("secret_link", "copied.txt").await);
    outside(ws.copy("sub/inner.txt", "link_out/inner.txt").await);
    outside(ws.shell_dir("link_out").await);
    outside(ws.glob("**/*", "link_out", 10).await);
    assert_eq!(
        std::fs::read_to_string(t.outside.join("secret.txt")).unwrap(),
        "SECRET\n"
    );
    assert_eq!(files_under(&t.outside), ["secret.txt"]);
}

#[tokio::test]
async fn dangling_symlinks_pointing_outside_are_refused() {
    let t = tree();
    let ws = workspace(&t);
    symlink(t.outside.join("not-yet.txt"), t.wd.join("dangling")).unwrap();
    outside(ws.write("dangling", b"x".to_vec()).await);
    outside(ws.write("dangling/x.txt", b"x".to_vec()).await);
    assert!(!t.outside.join("not-yet.txt").exists());
}

#[tokio::test]
async fn walks_do_not_follow_symlinks_out() {
    let t = tree();
    let ws = workspace(&t);
    let all = ws.glob("**/*", ".", 100).await.unwrap();
    assert!(
        all.paths.iter().all(|p| !p.contains("secret")),
        "{:?}",
        all.paths
    );
    let found = ws.grep(grep_request("SECRET")).await.unwrap();
    assert!(found.matches.is_empty(), "{:?}", found.matches);
}

#[tokio::test]
async fn symlinks_inside_and_allowed_paths_are_usable() {
    let t = tree();
    let ws = workspace(&t);
    assert_eq!(read(&ws, "link_in/inner.txt").await.unwrap(), b"inner\n");
    let shared_file = t.shared.join("data.txt");
    let shared_file = shared_file.to_str().unwrap();
    ws.write(shared_file, b"shared".to_vec()).await.unwrap();
    assert_eq!(read(&ws, shared_file).await.unwrap(), b"shared");
    let listed = ws.list(t.shared.to_str().unwrap()).await.unwrap();
    assert_eq!(listed.len(), 1);
    ws.copy(shared_file, "from-shared.txt").await.unwrap();
    let found = ws
        .glob("*.txt", t.shared.to_str().unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(
        found.paths,
        [shared_file],
        "outside the working dir: absolute"
    );
}

#[tokio::test]
async fn relative_allowed_paths_and_missing_ones() {
    let t = tree();
    let ws = LocalWorkspace::new(
        &t.wd,
        &[
            PathBuf::from("../shared"),
            PathBuf::from("/definitely/missing"),
        ],
        None,
    )
    .unwrap();
    ws.write(t.shared.join("x").to_str().unwrap(), b"x".to_vec())
        .await
        .unwrap();
    outside(read(&ws, "/definitely/missing/x").await);
    assert!(LocalWorkspace::new(&t.wd.join("nope"), &[], None).is_err());
    assert!(LocalWorkspace::new(&t.wd.join("sub/inner.txt"), &[], None).is_err());
}

// ---------------------------------------------------------------- glob & grep

async fn search_tree(t: &Tree) -> LocalWorkspace {
    let ws = workspace(t);
    for (path, text) in [
        ("src/main.rs", "fn main() {\n    println!(\"Hello\");\n}\n"),
        ("src/deep/lib.rs", "pub fn hello() {}\n// HELLO again\n"),
        ("README.md", "# Hello project\n"),
        ("docs/guide.md", "hello guide\n"),
        ("build/out.rs", "fn hello_generated() {}\n"),
        ("debug.log", "hello log\n"),
        (".gitignore", "build/\n*.log\n"),
    ] {
        ws.write(path, text.as_bytes().to_vec()).await.unwrap();
    }
    let mut binary = b"hello binary\n".to_vec();
    binary.extend_from_slice(&[0, 159, 146, 150, 0]);
    ws.write("data.bin", binary).await.unwrap();
    ws
}

#[tokio::test]
async fn glob_matches_relative_to_base_and_honours_gitignore() {
    let t = tree();
    let ws = search_tree(&t).await;
    let rs = ws.glob("**/*.rs", ".", 100).await.unwrap();
    assert_eq!(
        rs.paths,
        ["src/deep/lib.rs", "src/main.rs"],
        "build/ is ignored"
    );
    assert!(!rs.truncated);
    assert_eq!(
        ws.glob("*.md", ".", 100).await.unwrap().paths,
        ["README.md"]
    );
    assert_eq!(
        ws.glob("src/**", ".", 100).await.unwrap().paths,
        ["src/deep/lib.rs", "src/main.rs"]
    );
    assert_eq!(
        ws.glob("*.rs", "src", 100).await.unwrap().paths,
        ["src/main.rs"]
    );
    assert!(ws.glob("*.log", ".", 100).await.unwrap().paths.is_empty());
    let limited = ws.glob("**/*", ".", 2).await.unwrap();
    assert_eq!(limited.paths.len(), 2);
    assert!(limited.truncated);
    // Inside symlinks to files are kept, listed under the link's name.
    let via_link = ws.glob("**/inner.txt", ".", 10).await.unwrap();
    assert_eq!(
        via_link.paths,
        ["sub/inner.txt"],
        "symlinked dirs are not walked"
    );
}

#[tokio::test]
async fn grep_honours_gitignore_include_and_case() {
    let t = tree();
    let ws = search_tree(&t).await;
    let found = ws.grep(grep_request("hello")).await.unwrap();
    let paths: Vec<_> = found.matches.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        ["docs/guide.md", "src/deep/lib.rs"],
        "ignored and binary files skipped"
    );
    assert_eq!(found.matches[1].line_number, 1);
    assert_eq!(found.matches[1].line, "pub fn hello() {}");

    let mut req = grep_request("hello");
    req.case_insensitive = true;
    req.include = Some("*.rs".into());
    let found = ws.grep(req).await.unwrap();
    let hits: Vec<_> = found
        .matches
        .iter()
        .map(|m| (m.path.as_str(), m.line_number))
        .collect();
    assert_eq!(
        hits,
        [
            ("src/deep/lib.rs", 1),
            ("src/deep/lib.rs", 2),
            ("src/main.rs", 2)
        ]
    );

    let mut req = grep_request("HELLO");
    req.include = Some("src/deep/*".into());
    let found = ws.grep(req).await.unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].line, "// HELLO again");
}

#[tokio::test]
async fn grep_max_matches_long_lines_and_single_files() {
    let t = tree();
    let ws = search_tree(&t).await;
    let mut req = grep_request("(?i)hello");
    req.max_matches = 2;
    let found = ws.grep(req).await.unwrap();
    assert_eq!(found.matches.len(), 2);
    assert!(found.truncated);

    let long = format!("{}needle{}\n", "x".repeat(300), "é".repeat(1000));
    ws.write("long.txt", long.into_bytes()).await.unwrap();
    let found = ws.grep(grep_request("needle")).await.unwrap();
    assert_eq!(found.matches.len(), 1);
    assert!(found.matches[0].line.chars().count() <= 501);
    assert!(found.matches[0].line.ends_with('…'));

    // A single file, even an ignored one, when named explicitly.
    let mut req = grep_request("hello");
    req.path = "debug.log".into();
    let found = ws.grep(req).await.unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].path, "debug.log");
}

#[tokio::test]
async fn invalid_patterns_are_reported() {
    let t = tree();
    let ws = workspace(&t);
    assert!(matches!(
        ws.glob("a[", ".", 10).await,
        Err(WorkspaceError::InvalidPattern(_))
    ));
    assert!(matches!(
        ws.grep(grep_request("(unclosed")).await,
        Err(WorkspaceError::InvalidPattern(_))
    ));
    let mut req = grep_request("x");
    req.include = Some("{a,".into());
    assert!(matches!(
        ws.grep(req).await,
        Err(WorkspaceError::InvalidPattern(_))
    ));
}

// ---------------------------------------------------------------- shell_dir

#[tokio::test]
async fn shell_dir_in_local_mode_is_the_host_path() {
    let t = tree();
    let ws = workspace(&t);
    assert_eq!(ws.shell_dir(".").await.unwrap(), t.wd.to_str().unwrap());
    assert_eq!(
        ws.shell_dir("sub").await.unwrap(),
        t.wd.join("sub").to_str().unwrap()
    );
    assert_eq!(
        ws.shell_dir("link_in").await.unwrap(),
        t.wd.join("sub").to_str().unwrap()
    );
    assert_eq!(
        ws.shell_dir(t.shared.to_str().unwrap()).await.unwrap(),
        t.shared.to_str().unwrap()
    );
    assert!(matches!(
        ws.shell_dir("nope").await,
        Err(WorkspaceError::NotFound(_))
    ));
    assert!(matches!(
        ws.shell_dir("sub/inner.txt").await,
        Err(WorkspaceError::NotADirectory(_))
    ));
}

#[tokio::test]
async fn shell_dir_in_container_mode_maps_the_working_dir() {
    let t = tree();
    let ws = LocalWorkspace::new(
        &t.wd,
        std::slice::from_ref(&t.shared),
        Some("/workspace/".into()),
    )
    .unwrap();
    assert_eq!(ws.working_dir(), "/workspace");
    assert_eq!(ws.shell_dir(".").await.unwrap(), "/workspace");
    assert_eq!(ws.shell_dir("sub").await.unwrap(), "/workspace/sub");
    // Only the working directory is mounted.
    outside(ws.shell_dir(t.shared.to_str().unwrap()).await);
    // Container paths are accepted as input and mean the host files.
    assert_eq!(
        read(&ws, "/workspace/sub/inner.txt").await.unwrap(),
        b"inner\n"
    );
    outside(read(&ws, "/workspace/../etc/passwd").await);
}

// ---------------------------------------------------------------- races

/// Every name under `dir`, recursively, as paths relative to it.
fn tree_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Swapping a directory for a symlink to the outside between the policy check and the
/// use must never let an operation reach the outside: a thread flips `wd/dir` between a
/// real directory and a symlink to `outside` while the workspace reads, writes, lists,
/// copies and searches under `dir` hundreds of times. Nothing outside may be read,
/// written or created, and no temporary file may be left anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_never_leads_outside() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const SECRET: &str = "OUTSIDE-SECRET";
    let t = tree();
    let ws = workspace(&t);
    std::fs::write(t.outside.join("file"), SECRET).unwrap();
    std::fs::write(t.outside.join("secret-name.txt"), SECRET).unwrap();
    let outside_before = tree_names(&t.outside);
    ws.write("dir/file", b"INSIDE".to_vec()).await.unwrap();

    // `swap` is the symlink; each exchange swaps the two names atomically, so `dir` is
    // always either the real directory or the symlink to the outside.
    symlink(&t.outside, t.wd.join("swap")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (wd, stop) = (t.wd.clone(), stop.clone());
        std::thread::spawn(move || {
            use rustix::fs::{CWD, RenameFlags, renameat_with};
            let (dir, swap) = (wd.join("dir"), wd.join("swap"));
            let mut flips = 0u32;
            // Bounded: the workspace's operations normally end it much sooner.
            while !stop.load(Ordering::SeqCst) && flips < 10_000_000 {
                if renameat_with(CWD, &dir, CWD, &swap, RenameFlags::EXCHANGE).is_err() {
                    break;
                }
                flips += 1;
            }
            flips
        })
    };

    // Violations are counted, not asserted at once, so a failure says how often each
    // kind of operation escaped.
    let mut escaped: std::collections::BTreeMap<&str, u32> = Default::default();
    let mut reads_ok = 0;
    for i in 0..600 {
        if let Ok(bytes) = read(&ws, "dir/file").await {
            reads_ok += 1;
            if String::from_utf8_lossy(&bytes).contains(SECRET) {
                *escaped.entry("read").or_default() += 1;
            }
        }
        if i % 2 == 0 {
            let _ = ws
                .write("dir/file", format!("INSIDE-{i}").into_bytes())
                .await;
        }
        if i % 6 == 0 {
            if let Ok(entries) = ws.list("dir").await
                && entries.iter().any(|e| e.name == "secret-name.txt")
            {
                *escaped.entry("list").or_default() += 1;
            }
            let _ = ws.create_dir(&format!("dir/made-{i}")).await;
            let _ = ws.copy("dir/file", &format!("copy-{i}.txt")).await;
            let _ = ws
                .copy("sub/inner.txt", &format!("dir/inner-{i}.txt"))
                .await;
            if let Ok(found) = ws.grep(grep_request(SECRET)).await
                && !found.matches.is_empty()
            {
                *escaped.entry("grep").or_default() += 1;
            }
            if let Ok(found) = ws.glob("**/*", ".", 1000).await
                && found.paths.iter().any(|p| p.contains("secret-name"))
            {
                *escaped.entry("glob").or_default() += 1;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let flips = flipper.join().unwrap();
    assert!(flips > 0);

    for i in 0..600 {
        if let Ok(bytes) = read(&ws, &format!("copy-{i}.txt")).await
            && String::from_utf8_lossy(&bytes).contains(SECRET)
        {
            *escaped.entry("copy").or_default() += 1;
        }
    }
    let created: Vec<_> = tree_names(&t.outside)
        .into_iter()
        .filter(|name| !outside_before.contains(name))
        .collect();
    let overwritten = std::fs::read_to_string(t.outside.join("file")).unwrap() != SECRET;
    assert!(
        escaped.is_empty() && created.is_empty() && !overwritten,
        "escaped the policy: {escaped:?} (of 600 reads, 100 lists/greps/globs/copies), \
         created outside: {created:?}, outside file overwritten: {overwritten}"
    );
    let root = t.wd.parent().unwrap();
    let temps: Vec<_> = tree_names(root)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    assert!(reads_ok > 0, "some reads got through");
}
