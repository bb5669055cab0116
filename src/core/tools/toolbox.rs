//! The tools of one run, chosen from the preset's toolsets minus `exclude_tools`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ports::{ToolSchema, ToolsetSpec};

use super::{Tool, context, edit, filesystem, search, shell, tasks, view, web};

/// Tools by name, in a stable order.
#[derive(Clone, Default)]
pub struct Toolbox {
    tools: BTreeMap<&'static str, Arc<dyn Tool>>,
}

/// The built-in tools of a toolset; empty for toolsets that are not built in here
/// (subagent tools are added by the run engine).
fn builtin(toolset: &str) -> Vec<Arc<dyn Tool>> {
    match toolset {
        "core" => vec![
            Arc::new(view::ViewTool),
            Arc::new(edit::EditTool),
            Arc::new(edit::MultiEditTool),
            Arc::new(edit::WriteTool),
            Arc::new(filesystem::LsTool),
            Arc::new(search::GlobTool),
            Arc::new(search::GrepTool),
        ],
        "filesystem" => vec![
            Arc::new(filesystem::MkdirTool),
            Arc::new(filesystem::MoveTool),
            Arc::new(filesystem::CopyTool),
        ],
        "shell" => vec![Arc::new(shell::ShellTool)],
        "web" => vec![Arc::new(web::FetchTool), Arc::new(web::DownloadTool)],
        "task" => vec![
            Arc::new(tasks::TaskCreateTool),
            Arc::new(tasks::TaskUpdateTool),
            Arc::new(tasks::TaskListTool),
            Arc::new(tasks::TaskGetTool),
        ],
        "context" => vec![
            Arc::new(context::ThinkingTool),
            Arc::new(context::HandoffTool),
        ],
        _ => Vec::new(),
    }
}

impl Toolbox {
    /// The enabled toolsets' tools, minus each toolset's `exclude_tools`.
    pub fn from_toolsets(specs: &[ToolsetSpec]) -> Self {
        let mut tools = BTreeMap::new();
        for spec in specs.iter().filter(|s| s.enabled) {
            for tool in builtin(&spec.toolset_name) {
                if !spec.exclude_tools.iter().any(|x| x == tool.name()) {
                    tools.insert(tool.name(), tool);
                }
            }
        }
        Self { tools }
    }

    /// Adds (or replaces) a tool.
    pub fn insert(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.tools.keys().copied().collect()
    }

    /// The schemas offered to the model.
    pub fn schemas(&self) -> Vec<ToolSchema> {
        self.tools
            .values()
            .map(|t| ToolSchema {
                name: t.name().to_owned(),
                description: t.description().to_owned(),
                parameters: t.parameters(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalogue;

    fn spec(name: &str, exclude: &[&str]) -> ToolsetSpec {
        ToolsetSpec {
            toolset_name: name.into(),
            enabled: true,
            exclude_tools: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_builtin_tool_is_in_the_catalogue_under_its_toolset() {
        for (toolset, names) in catalogue::TOOLSETS {
            for tool in builtin(toolset) {
                assert!(names.contains(&tool.name()), "{toolset}: {}", tool.name());
            }
        }
    }

    #[test]
    fn implemented_toolsets_provide_every_catalogued_tool() {
        for toolset in ["core", "filesystem", "shell", "task", "context"] {
            let box_ = Toolbox::from_toolsets(&[spec(toolset, &[])]);
            let mut want: Vec<&str> = catalogue::tools_of(toolset).unwrap().to_vec();
            want.sort_unstable();
            assert_eq!(box_.names(), want);
        }
    }

    #[test]
    fn excluded_and_disabled_tools_are_absent() {
        let mut disabled = spec("shell", &[]);
        disabled.enabled = false;
        let box_ = Toolbox::from_toolsets(&[spec("core", &["write", "grep"]), disabled]);
        assert_eq!(
            box_.names(),
            vec!["edit", "glob", "ls", "multi_edit", "view"]
        );
    }

    #[test]
    fn schemas_are_objects_without_a_schema_key_and_describe_fields() {
        let box_ = Toolbox::from_toolsets(&[spec("core", &[]), spec("shell", &[])]);
        for schema in box_.schemas() {
            assert_eq!(schema.parameters["type"], "object", "{}", schema.name);
            assert!(schema.parameters.get("$schema").is_none());
            assert!(!schema.description.is_empty());
        }
        let shell = box_
            .schemas()
            .into_iter()
            .find(|s| s.name == "shell")
            .unwrap();
        assert_eq!(shell.parameters["required"], serde_json::json!(["command"]));
        assert!(
            shell.parameters["properties"]["timeout_secs"]["description"]
                .as_str()
                .unwrap()
                .contains("killed")
        );
    }
}
