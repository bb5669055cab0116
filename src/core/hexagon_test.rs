//! Keeps the hexagon honest: nothing under `src/core` may name an adapter, the web
//! framework or a driver.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("hexagon_test.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn core_imports_only_ports() {
    let forbidden = [
        "adapters",
        "poem",
        "poem_openapi",
        "diesel",
        "diesel_async",
        "redis",
        "bb8",
        "opendal",
        "reqwest",
    ];
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"),
        &mut files,
    );
    assert!(
        files.len() >= 5,
        "the scan sees the core's files: {files:?}"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let tokens = text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
        for token in tokens {
            for word in forbidden {
                assert!(
                    !(token == word || token.starts_with(&format!("{word}::"))),
                    "{} names {word} ({token}); the core may only use ports",
                    path.display()
                );
            }
            assert!(
                !token.starts_with("crate::api") && !token.starts_with("crate::app"),
                "{}: {token}",
                path.display()
            );
        }
    }
}
