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

/// The core's top-level module a file belongs to, and how many `super::` lead from the
/// file's module up to `core` (`agent/tool_calls.rs`: `agent`, 2; `agent/mod.rs`: 1).
fn module_of(core: &Path, file: &Path) -> Option<(String, usize)> {
    let rel = file.strip_prefix(core).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    Some((parts.first()?.clone(), parts.len()))
}

/// The first segment after each path prefix in `text` that leads to `core`'s top-level
/// modules: `crate::core::X` and `super::…::X` with exactly `depth` supers; grouped
/// imports (`super::{X, Y::Z}`) name each group member.
fn core_modules_named(text: &str, depth: usize) -> Vec<String> {
    let supers = "super::".repeat(depth);
    let mut found = Vec::new();
    for prefix in ["crate::core::".to_owned(), supers] {
        for (at, _) in text.match_indices(&prefix) {
            let before = text[..at].chars().last();
            let rest = &text[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                || rest.starts_with("super::")
            {
                continue; // part of a longer path, or more `super::` than this depth
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    found.push(ident(item.trim()));
                }
            } else {
                found.push(ident(rest));
            }
        }
    }
    found.into_iter().filter(|m| !m.is_empty()).collect()
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every edge "module A names module B" between the core's top-level modules.
fn core_module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    let mut modules = std::collections::BTreeSet::new();
    for file in &files {
        if let Some((module, _)) = module_of(&core, file) {
            modules.insert(module);
        }
    }
    let mut graph: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> =
        std::collections::BTreeMap::new();
    for file in &files {
        let Some((module, depth)) = module_of(&core, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for named in core_modules_named(&text, depth) {
            if named != module && modules.contains(&named) {
                graph.entry(module.clone()).or_default().insert(named);
            }
        }
    }
    graph
}

#[test]
fn core_modules_import_each_other_without_cycles() {
    let graph = core_module_graph();
    assert!(
        graph
            .get("agent")
            .is_some_and(|deps| deps.contains("tools")),
        "the scan sees the loop's use of the tools: {graph:?}"
    );
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!(
                "import cycle in src/core: {} -> {node}",
                path[at..].join(" -> ")
            );
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = std::collections::BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_api_reaches_runs_only_through_execution() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api"),
        &mut files,
    );
    assert!(files.len() >= 5, "the scan sees the API's files");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for named in core_modules_named(&text, 64) {
            assert!(
                !["agent", "tools", "run", "subagents"].contains(&named.as_str()),
                "{} names core::{named}; the API reaches runs through core::execution",
                path.display()
            );
        }
    }
}

#[test]
fn module_references_are_read_from_paths_and_groups() {
    let text = "use super::{agent::X, tools}; use crate::core::run::Y; super::super::limits::Z";
    assert_eq!(
        core_modules_named(text, 1),
        vec!["run", "agent", "tools"],
        "one super from a top-level file"
    );
    assert_eq!(core_modules_named(text, 2), vec!["run", "limits"]);
}
