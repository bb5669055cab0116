//! Wire types of the HTTP API: poem-openapi `Object`s mirroring domain types via `From`,
//! so the published schema is ours to shape without touching the domain.
//!
//! Naming rule: an API type is named exactly as the schema it publishes (no suffix, no
//! `#[oai(rename)]`), so the Rust name is the one generated clients see. Where a domain
//! type has the same name, API code names the domain one by its module
//! (`ports::Preset`, `execution::RunRequest`).

pub mod capped;
pub mod events;
mod examples;
pub mod mcp;
pub mod presets;
pub mod run_result;
pub mod runs;
pub mod sessions;
pub mod strict;
pub mod text;
pub mod tools;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The naming rule holds: no API type carries a suffix or renames its schema (the
    /// operation tags are not types and keep their lower-case names).
    #[test]
    fn api_types_are_named_as_their_schemas() {
        let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut files = Vec::new();
        collect(&api, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                let place = format!("{}:{}", file.display(), n + 1);
                let declares = line.starts_with("pub struct ") || line.starts_with("pub enum ");
                assert!(
                    !(declares && line.contains("Dto")),
                    "{place}: an API type named with a suffix: {line}"
                );
                let renames_type = line.starts_with("#[oai(") && line.contains("rename = \"");
                let is_tag = file.ends_with("mod.rs")
                    && line.starts_with("#[oai(rename = \"")
                    && line.chars().nth(16).is_some_and(|c| c.is_ascii_lowercase());
                assert!(
                    !renames_type || is_tag,
                    "{place}: an API type renames its schema: {line}"
                );
            }
        }
    }

    fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
