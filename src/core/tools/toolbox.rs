//! The tools of one run, chosen from the preset's toolsets minus `exclude_tools`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ports::{ToolSchema, ToolsetSpec, Warning};

use super::{Tool, context, edit, filesystem, search, shell, tasks, view, web, web_services};
use crate::core::environment::Environment;

/// Tools by name, in a stable order.
#[derive(Clone, Default)]
pub struct Toolbox {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

/// Which of the web toolset's services the admin configured: `search` and `scrape` are
/// offered only then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebServices {
    pub search: bool,
    pub scrape: bool,
}

impl WebServices {
    pub fn of(env: &Environment) -> Self {
        Self {
            search: env.search.is_some(),
            scrape: env.scraper.is_some(),
        }
    }

    /// What a run whose preset enables `web` is told at its start about the tools it asked
    /// for (not excluded) that no service offers: a warning each, not a silent gap.
    pub fn missing(self, specs: &[ToolsetSpec]) -> Vec<Warning> {
        let Some(web) = specs.iter().find(|s| s.enabled && s.toolset_name == "web") else {
            return Vec::new();
        };
        let wanted = |tool: &str| !web.exclude_tools.iter().any(|x| x == tool);
        let mut warnings = Vec::new();
        if !self.search && wanted("search") {
            warnings.push(unavailable(
                "search",
                "set TAVILY_API_KEY, or GOOGLE_SEARCH_API_KEY and GOOGLE_SEARCH_CX",
            ));
        }
        if !self.scrape && wanted("scrape") {
            warnings.push(unavailable("scrape", "set FIRECRAWL_API_KEY"));
        }
        warnings
    }
}

fn unavailable(tool: &str, remedy: &str) -> Warning {
    Warning {
        code: "tool_unavailable".to_owned(),
        message: format!(
            "the web toolset's {tool} is not offered: no service is configured ({remedy})"
        ),
    }
}

/// The built-in tools of a toolset; empty for toolsets that are not built in here
/// (subagent tools are added by the run engine).
fn builtin(toolset: &str, services: WebServices) -> Vec<Arc<dyn Tool>> {
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
        "web" => web_tools(services),
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

fn web_tools(services: WebServices) -> Vec<Arc<dyn Tool>> {
    let mut tools: Vec<Arc<dyn Tool>> = vec![Arc::new(web::FetchTool), Arc::new(web::DownloadTool)];
    if services.search {
        tools.push(Arc::new(web_services::SearchTool));
    }
    if services.scrape {
        tools.push(Arc::new(web_services::ScrapeTool));
    }
    tools
}

impl Toolbox {
    /// The enabled toolsets' tools, minus each toolset's `exclude_tools`.
    pub fn from_toolsets(specs: &[ToolsetSpec], services: WebServices) -> Self {
        let mut tools = BTreeMap::new();
        for spec in specs.iter().filter(|s| s.enabled) {
            for tool in builtin(&spec.toolset_name, services) {
                if !spec.exclude_tools.iter().any(|x| x == tool.name()) {
                    tools.insert(tool.name().to_owned(), tool);
                }
            }
        }
        Self { tools }
    }

    /// Adds (or replaces) a tool.
    pub fn insert(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
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
            for tool in builtin(
                toolset,
                WebServices {
                    search: true,
                    scrape: true,
                },
            ) {
                assert!(names.contains(&tool.name()), "{toolset}: {}", tool.name());
            }
        }
    }

    #[test]
    fn implemented_toolsets_provide_every_catalogued_tool() {
        let all = WebServices {
            search: true,
            scrape: true,
        };
        for toolset in ["core", "filesystem", "shell", "task", "context", "web"] {
            let box_ = Toolbox::from_toolsets(&[spec(toolset, &[])], all);
            let mut want: Vec<&str> = catalogue::tools_of(toolset).unwrap().to_vec();
            want.sort_unstable();
            assert_eq!(box_.names(), want);
        }
    }

    #[test]
    fn search_and_scrape_are_offered_only_with_their_service() {
        let web = |search, scrape| {
            let toolbox =
                Toolbox::from_toolsets(&[spec("web", &[])], WebServices { search, scrape });
            toolbox.names().join(",")
        };
        assert_eq!(web(false, false), "download,fetch");
        assert_eq!(web(true, false), "download,fetch,search");
        assert_eq!(web(false, true), "download,fetch,scrape");
    }

    #[test]
    fn a_web_preset_is_warned_of_each_missing_service_it_did_not_exclude() {
        let codes = |services: WebServices, specs: &[ToolsetSpec]| {
            services
                .missing(specs)
                .into_iter()
                .map(|w| {
                    assert_eq!(w.code, "tool_unavailable");
                    w.message.split("'s ").nth(1).unwrap_or("").to_owned()
                })
                .collect::<Vec<_>>()
        };
        let none = WebServices::default();
        let both = codes(none, &[spec("web", &[])]);
        assert!(
            both[0].starts_with("search ") && both[1].starts_with("scrape "),
            "{both:?}"
        );
        assert_eq!(
            codes(none, &[spec("web", &["search", "scrape"])]),
            Vec::<String>::new()
        );
        assert_eq!(codes(none, &[spec("core", &[])]), Vec::<String>::new());
        let search_only = WebServices {
            search: true,
            scrape: false,
        };
        let left = codes(search_only, &[spec("web", &[])]);
        assert_eq!(left.len(), 1);
        assert!(left[0].starts_with("scrape "), "{left:?}");
    }

    #[test]
    fn excluded_and_disabled_tools_are_absent() {
        let mut disabled = spec("shell", &[]);
        disabled.enabled = false;
        let box_ = Toolbox::from_toolsets(
            &[spec("core", &["write", "grep"]), disabled],
            WebServices::default(),
        );
        assert_eq!(
            box_.names(),
            vec!["edit", "glob", "ls", "multi_edit", "view"]
        );
    }

    #[test]
    fn schemas_are_objects_without_a_schema_key_and_describe_fields() {
        let box_ = Toolbox::from_toolsets(
            &[spec("core", &[]), spec("shell", &[])],
            WebServices::default(),
        );
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
