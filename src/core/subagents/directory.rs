//! Which subagents an agent may call: its preset's `subagents.refs`, plus the built-in ones
//! when `include_builtin` is set, and the system-prompt section that introduces them.

use std::fmt::Write as _;

use ports::{Preset, PresetId, SubagentSpec, ToolsetSpec};

use crate::core::tools::ToolError;

/// A subagent an agent can delegate to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subagent {
    pub name: String,
    pub description: String,
    /// Extra guidance for the calling agent on when and how to use it.
    pub instruction: Option<String>,
    pub source: Source,
}

/// Where a subagent's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A stored preset, by id: its model, system prompt and toolsets.
    Preset(PresetId),
    Builtin(Builtin),
}

/// The subagents that need no preset; they run on the caller's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// The caller's toolsets (without subagent tools), for any self-contained task.
    General,
    /// Read-only file tools, for finding things out without changing anything.
    Explorer,
}

impl Builtin {
    const ALL: [Builtin; 2] = [Builtin::General, Builtin::Explorer];

    pub fn name(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Explorer => "explorer",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::General => {
                "A general-purpose helper with your model and tools: give it a \
                 self-contained task and it answers with the result."
            }
            Self::Explorer => {
                "Reads and searches files (view, ls, glob, grep) and reports what it \
                 found; it changes nothing."
            }
        }
    }

    /// Its system prompt.
    pub fn system_prompt(self) -> &'static str {
        match self {
            Self::General => {
                "You are a helper agent working for another agent. Complete the task you \
                 are given using your tools, then answer with a concise, complete report \
                 of the result: your answer is all the other agent sees."
            }
            Self::Explorer => {
                "You are an exploration agent working for another agent. Investigate the \
                 files as asked, without changing anything, and answer with a concise \
                 report of what you found, citing file paths and lines."
            }
        }
    }

    /// Its toolsets, given the caller's.
    pub fn toolsets(self, caller: &[ToolsetSpec]) -> Vec<ToolsetSpec> {
        match self {
            Self::General => caller
                .iter()
                .filter(|t| t.toolset_name != super::TOOLSET)
                .cloned()
                .collect(),
            Self::Explorer => vec![ToolsetSpec {
                toolset_name: "core".to_owned(),
                enabled: true,
                exclude_tools: ["edit", "multi_edit", "write"].map(str::to_owned).to_vec(),
            }],
        }
    }
}

/// The subagents one agent may call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    entries: Vec<Subagent>,
}

impl Directory {
    /// The subagents of `spec`: refs first (a ref may shadow a built-in of the same name).
    pub fn of(spec: &SubagentSpec) -> Self {
        let mut entries: Vec<Subagent> = spec
            .refs
            .iter()
            .map(|r| Subagent {
                name: r.name.clone(),
                description: r.description.clone(),
                instruction: r.instruction.clone(),
                source: Source::Preset(r.preset_id.clone()),
            })
            .collect();
        if spec.include_builtin {
            for b in Builtin::ALL {
                if !entries.iter().any(|s| s.name == b.name()) {
                    entries.push(Subagent {
                        name: b.name().to_owned(),
                        description: b.description().to_owned(),
                        instruction: None,
                        source: Source::Builtin(b),
                    });
                }
            }
        }
        Self { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The subagent called `name`.
    pub fn get(&self, name: &str) -> Option<&Subagent> {
        self.entries.iter().find(|s| s.name == name)
    }

    /// The subagent a tool call names, checked with its task; the errors are for the model.
    pub fn resolve(&self, name: &str, task: &str) -> Result<&Subagent, ToolError> {
        let Some(subagent) = self.get(name) else {
            return Err(ToolError(format!(
                "no subagent {name:?}; available: {}",
                self.names()
            )));
        };
        if task.trim().is_empty() {
            return Err(ToolError("task is empty".to_owned()));
        }
        Ok(subagent)
    }

    /// Names, comma-separated, for error messages.
    pub fn names(&self) -> String {
        self.entries
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The section appended to the calling agent's system prompt: each subagent with its
    /// description and instruction, and which tools reach them.
    pub fn prompt_section(&self, tools: &[&str]) -> String {
        let mut out = format!(
            "\n\n## Subagents\nYou can hand work to these subagents with {}:\n",
            tools.join(" or ")
        );
        for s in &self.entries {
            let _ = write!(out, "- {}", s.name);
            if !s.description.is_empty() {
                let _ = write!(out, ": {}", s.description);
            }
            out.push('\n');
            if let Some(instruction) = s.instruction.as_deref().filter(|i| !i.trim().is_empty()) {
                let _ = writeln!(out, "  {instruction}");
            }
        }
        out
    }
}

/// Whether the caller's preset offers `tool` of the subagent toolset: yes unless a
/// `subagent` toolset entry disables it or excludes the tool.
pub fn offered(preset: &Preset, tool: &str) -> bool {
    preset
        .toolsets
        .iter()
        .find(|t| t.toolset_name == super::TOOLSET)
        .is_none_or(|t| t.enabled && !t.exclude_tools.iter().any(|x| x == tool))
}

#[cfg(test)]
mod tests {
    use ports::SubagentRef;

    use super::*;

    fn r(name: &str, preset: &str, instruction: Option<&str>) -> SubagentRef {
        SubagentRef {
            preset_id: preset.into(),
            name: name.into(),
            description: format!("{name} does things"),
            instruction: instruction.map(Into::into),
        }
    }

    #[test]
    fn refs_come_first_and_shadow_builtins_of_the_same_name() {
        let dir = Directory::of(&SubagentSpec {
            include_builtin: true,
            async_enabled: false,
            refs: vec![r("general", "my-general", None), r("coder", "code", None)],
        });
        assert_eq!(dir.names(), "general, coder, explorer");
        assert_eq!(
            dir.get("general").unwrap().source,
            Source::Preset("my-general".into())
        );
        assert_eq!(
            dir.get("explorer").unwrap().source,
            Source::Builtin(Builtin::Explorer)
        );
        assert!(dir.get("nobody").is_none());
        assert!(Directory::of(&SubagentSpec::default()).is_empty());
    }

    #[test]
    fn the_prompt_section_carries_descriptions_and_instructions() {
        let dir = Directory::of(&SubagentSpec {
            include_builtin: false,
            async_enabled: true,
            refs: vec![r("coder", "code", Some("Use coder for any code change."))],
        });
        let section = dir.prompt_section(&["delegate", "async_delegate"]);
        assert!(section.contains("with delegate or async_delegate"));
        assert!(section.contains("- coder: coder does things\n"));
        assert!(section.contains("  Use coder for any code change.\n"));
    }

    #[test]
    fn builtins_drop_subagent_tools_or_writes() {
        let caller = vec![
            ToolsetSpec {
                toolset_name: "shell".into(),
                enabled: true,
                exclude_tools: vec![],
            },
            ToolsetSpec {
                toolset_name: "subagent".into(),
                enabled: true,
                exclude_tools: vec![],
            },
        ];
        let general = Builtin::General.toolsets(&caller);
        assert_eq!(general.len(), 1);
        assert_eq!(general[0].toolset_name, "shell");
        let explorer = Builtin::Explorer.toolsets(&caller);
        assert_eq!(explorer[0].toolset_name, "core");
        assert!(explorer[0].exclude_tools.contains(&"write".to_owned()));
    }
}
