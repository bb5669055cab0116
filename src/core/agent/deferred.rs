//! Deferred tool calls (spec 05): calls to tools that need a human's approval, and to
//! external tools the caller runs itself, are not executed. The run stops with the calls
//! pending; the next run resolves each of them (approve, deny, a value, or automatically),
//! so the model-facing history always has one result per call.

use std::collections::{BTreeSet, HashSet};

use ports::{
    AssistantPart, ModelMessage, PendingKind, PendingToolCall, Preset, ToolResult, ToolSchema,
};

use super::tool_calls::CallRequest;
use crate::core::preset_validation::FieldError;
use crate::core::tools::mcp;

/// Which calls of an agent are deferred instead of run.
#[derive(Debug, Clone, Default)]
pub struct Deferral {
    /// Tools whose calls wait for a human's approval.
    pub approval: BTreeSet<String>,
    /// Caller-executed tools, offered to the model for this run only.
    pub external: Vec<ToolSchema>,
    /// A nested agent (a sync subagent) cannot stop its parent's run to wait for a human:
    /// its calls that need approval are refused with an error the model can read.
    pub nested: bool,
}

impl Deferral {
    /// The deferral of an agent running `preset`, offered `external` tools.
    pub fn of(preset: &Preset, external: Vec<ToolSchema>, nested: bool) -> Self {
        Self {
            approval: preset
                .tool_config
                .require_approval
                .iter()
                .cloned()
                .collect(),
            external,
            nested,
        }
    }
}

/// What the loop does with one call.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Disposition {
    Run,
    Defer(PendingKind),
    Refuse(String),
}

impl Deferral {
    /// `arguments` matter for a proxied MCP call only: it needs approval when the tool it
    /// calls does.
    pub(super) fn disposition(&self, tool: &str, arguments: &str) -> Disposition {
        if self.external.iter().any(|t| t.name == tool) {
            return Disposition::Defer(PendingKind::External);
        }
        let proxied =
            || mcp::proxied_name(tool, arguments).is_some_and(|n| self.approval.contains(&n));
        if !self.approval.contains(tool) && !proxied() {
            return Disposition::Run;
        }
        if self.nested {
            Disposition::Refuse(format!(
                "{tool} needs a human's approval, which a subagent cannot ask for; \
                 report back instead and let the main agent call it"
            ))
        } else {
            Disposition::Defer(PendingKind::Approval)
        }
    }
}

/// A human's decision on a call that needed approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub tool_call_id: String,
    pub approved: bool,
    /// Returned to the model when the call is denied.
    pub reason: Option<String>,
}

/// The caller's value for an external tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalResult {
    pub tool_call_id: String,
    pub output: String,
    pub is_error: bool,
}

/// How a run resolves the calls its parent left pending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolutions {
    pub interactions: Vec<Interaction>,
    pub results: Vec<ExternalResult>,
}

impl Resolutions {
    pub fn is_empty(&self) -> bool {
        self.interactions.is_empty() && self.results.is_empty()
    }
}

/// Every broken rule of `r` against the parent's `pending` calls: each id must be pending,
/// of the matching kind, and resolved once.
pub fn check(pending: &[PendingToolCall], r: &Resolutions) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let ids = r
        .interactions
        .iter()
        .enumerate()
        .map(|(i, x)| {
            (
                "user_interactions",
                i,
                &x.tool_call_id,
                PendingKind::Approval,
            )
        })
        .chain(
            r.results
                .iter()
                .enumerate()
                .map(|(i, x)| ("tool_results", i, &x.tool_call_id, PendingKind::External)),
        );
    for (list, i, id, wanted) in ids {
        let field = format!("{list}[{i}].tool_call_id");
        let Some(call) = pending.iter().find(|p| p.tool_call_id == *id) else {
            let message = if pending.is_empty() {
                format!("{id} is not pending: the parent session waits for no tool calls")
            } else {
                let ids: Vec<&str> = pending.iter().map(|p| p.tool_call_id.as_str()).collect();
                format!("{id} is not pending; pending calls: {}", ids.join(", "))
            };
            errors.push(FieldError { field, message });
            continue;
        };
        if !seen.insert(id.as_str()) {
            errors.push(FieldError {
                field,
                message: format!("{id} is resolved more than once"),
            });
        } else if call.kind != wanted {
            let message = match call.kind {
                PendingKind::Approval => format!(
                    "{id} ({}) waits for approval: answer it in user_interactions",
                    call.tool_name
                ),
                PendingKind::External => format!(
                    "{id} ({}) is an external tool call: supply its value in tool_results",
                    call.tool_name
                ),
            };
            errors.push(FieldError { field, message });
        }
    }
    errors
}

/// What resolving one pending call means.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plan {
    /// Approved: execute it now.
    Run(CallRequest),
    /// Its result is already known (denied, a supplied value, or uncovered).
    Answer(ToolResult),
}

/// The plan for every pending call, in the order the model made them.
pub(super) fn plan(
    pending: Vec<PendingToolCall>,
    mut r: Resolutions,
    history: &[ModelMessage],
) -> Vec<(PendingToolCall, Plan)> {
    pending
        .into_iter()
        .map(|call| {
            let answer = |content: String, is_error: bool| {
                Plan::Answer(ToolResult {
                    tool_call_id: call.tool_call_id.clone(),
                    tool_name: call.tool_name.clone(),
                    content,
                    is_error,
                    images: Vec::new(),
                })
            };
            let plan = match call.kind {
                PendingKind::Approval => {
                    let decision =
                        take(&mut r.interactions, |x| x.tool_call_id == call.tool_call_id);
                    match decision {
                        Some(Interaction { approved: true, .. }) => Plan::Run(CallRequest {
                            id: call.tool_call_id.clone(),
                            name: call.tool_name.clone(),
                            arguments: arguments_of(history, &call),
                        }),
                        Some(Interaction { reason, .. }) => answer(
                            match reason.filter(|r| !r.trim().is_empty()) {
                                Some(reason) => format!("The user denied this call: {reason}"),
                                None => "The user denied this call.".to_owned(),
                            },
                            true,
                        ),
                        None => answer(
                            "Not executed: the call needed the user's approval and the user \
                             moved on without giving it (automatically denied)."
                                .to_owned(),
                            true,
                        ),
                    }
                }
                PendingKind::External => {
                    match take(&mut r.results, |x| x.tool_call_id == call.tool_call_id) {
                        Some(value) => answer(value.output, value.is_error),
                        None => answer(
                            "No result: the caller did not return a value for this external \
                             tool call (automatically failed)."
                                .to_owned(),
                            true,
                        ),
                    }
                }
            };
            (call, plan)
        })
        .collect()
}

fn take<T>(items: &mut Vec<T>, pred: impl Fn(&T) -> bool) -> Option<T> {
    let at = items.iter().position(pred)?;
    Some(items.remove(at))
}

/// The call's arguments exactly as the model wrote them (kept in history), else as parsed.
fn arguments_of(history: &[ModelMessage], call: &PendingToolCall) -> String {
    history
        .iter()
        .rev()
        .find_map(|m| match m {
            ModelMessage::Assistant { parts } => parts.iter().find_map(|p| match p {
                AssistantPart::ToolCall { id, arguments, .. } if *id == call.tool_call_id => {
                    Some(arguments.clone())
                }
                _ => None,
            }),
            _ => None,
        })
        .unwrap_or_else(|| args_text(&call.args))
}

/// The arguments as JSON text; a string value is an unparseable original, kept verbatim.
pub(super) fn args_text(args: &serde_json::Value) -> String {
    match args {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The arguments as a JSON value for the pending record (the raw text when it does not
/// parse, so nothing is lost).
pub(super) fn args_value(arguments: &str) -> serde_json::Value {
    if arguments.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::Value::String(arguments.into()))
}

/// Puts the results of resolved calls next to the results of the same step: into
/// the tool message that follows the assistant message which made the calls (created when
/// every call of that step was deferred), ordered as the calls were made.
pub(super) fn insert_results(history: &mut Vec<ModelMessage>, results: Vec<ToolResult>) {
    if results.is_empty() {
        return;
    }
    let made_by = |m: &ModelMessage| match m {
        ModelMessage::Assistant { parts } => parts.iter().any(|p| {
            matches!(p, AssistantPart::ToolCall { id, .. }
                if results.iter().any(|r| r.tool_call_id == *id))
        }),
        _ => false,
    };
    let Some(at) = history.iter().rposition(made_by) else {
        // Without the calling message the results would make the history invalid.
        tracing::warn!("resolved tool calls have no calling message in history; dropped");
        return;
    };
    let order: Vec<String> = match &history[at] {
        ModelMessage::Assistant { parts } => parts
            .iter()
            .filter_map(|p| match p {
                AssistantPart::ToolCall { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let position = |r: &ToolResult| order.iter().position(|id| *id == r.tool_call_id);
    match history.get_mut(at + 1) {
        Some(ModelMessage::Tool { results: existing }) => {
            existing.extend(results);
            existing.sort_by_key(position);
        }
        _ => {
            let mut results = results;
            results.sort_by_key(position);
            history.insert(at + 1, ModelMessage::Tool { results });
        }
    }
}

#[cfg(test)]
mod tests {
    use ports::UserPart;
    use serde_json::json;

    use super::*;

    fn pending(id: &str, tool: &str, kind: PendingKind) -> PendingToolCall {
        PendingToolCall {
            tool_call_id: id.into(),
            tool_name: tool.into(),
            args: json!({"x": id}),
            kind,
        }
    }

    fn interaction(id: &str, approved: bool) -> Interaction {
        Interaction {
            tool_call_id: id.into(),
            approved,
            reason: None,
        }
    }

    fn result(id: &str, content: &str) -> ToolResult {
        ToolResult {
            tool_call_id: id.into(),
            tool_name: "t".into(),
            content: content.into(),
            is_error: false,
            images: vec![],
        }
    }

    fn call(id: &str) -> AssistantPart {
        AssistantPart::ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: format!("{{\"raw\":\"{id}\"}}"),
        }
    }

    #[test]
    fn external_tools_defer_and_approval_is_refused_inside_subagents() {
        let mut d = Deferral {
            approval: BTreeSet::from(["shell".to_owned()]),
            external: vec![ToolSchema {
                name: "lookup".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            nested: false,
        };
        assert_eq!(d.disposition("view", "{}"), Disposition::Run);
        assert_eq!(
            d.disposition("shell", "{}"),
            Disposition::Defer(PendingKind::Approval)
        );
        assert_eq!(
            d.disposition("lookup", "{}"),
            Disposition::Defer(PendingKind::External)
        );
        d.nested = true;
        assert!(
            matches!(d.disposition("shell", "{}"), Disposition::Refuse(m) if m.contains("approval"))
        );
    }

    #[test]
    fn an_mcp_tool_needing_approval_needs_it_through_its_proxy_too() {
        let d = Deferral {
            approval: BTreeSet::from(["ha__turn_on".to_owned()]),
            ..Deferral::default()
        };
        let approval = Disposition::Defer(PendingKind::Approval);
        assert_eq!(d.disposition("ha__turn_on", "{}"), approval);
        assert_eq!(
            d.disposition("ha__call_tool", r#"{"name": "turn_on"}"#),
            approval
        );
        assert_eq!(
            d.disposition("ha__call_tool", r#"{"name": "status"}"#),
            Disposition::Run
        );
        assert_eq!(d.disposition("ha__search_tools", "{}"), Disposition::Run);
    }

    #[test]
    fn check_refuses_unknown_duplicate_and_wrong_kind_ids() {
        let pending = [
            pending("a", "shell", PendingKind::Approval),
            pending("b", "lookup", PendingKind::External),
        ];
        let ok = Resolutions {
            interactions: vec![interaction("a", true)],
            results: vec![ExternalResult {
                tool_call_id: "b".into(),
                output: "42".into(),
                is_error: false,
            }],
        };
        assert!(check(&pending, &ok).is_empty());

        let bad = Resolutions {
            interactions: vec![interaction("zz", true), interaction("b", false)],
            results: vec![
                ExternalResult {
                    tool_call_id: "a".into(),
                    output: String::new(),
                    is_error: false,
                },
                ExternalResult {
                    tool_call_id: "b".into(),
                    output: String::new(),
                    is_error: false,
                },
            ],
        };
        let errors = check(&pending, &bad);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "user_interactions[0].tool_call_id",
                "user_interactions[1].tool_call_id",
                "tool_results[0].tool_call_id",
                "tool_results[1].tool_call_id",
            ]
        );
        assert!(errors[0].message.contains("pending calls: a, b"));
        assert!(errors[1].message.contains("tool_results"));
        assert!(errors[2].message.contains("user_interactions"));
        assert!(errors[3].message.contains("more than once"));
        assert!(
            check(&[], &ok)[0]
                .message
                .contains("waits for no tool calls")
        );
    }

    #[test]
    fn plans_run_approved_calls_answer_the_rest_and_cover_everything() {
        let history = vec![ModelMessage::Assistant {
            parts: vec![call("a"), call("b"), call("c"), call("d")],
        }];
        let r = Resolutions {
            interactions: vec![
                interaction("a", true),
                Interaction {
                    tool_call_id: "b".into(),
                    approved: false,
                    reason: Some("too risky".into()),
                },
            ],
            results: vec![],
        };
        let plans = plan(
            vec![
                pending("a", "shell", PendingKind::Approval),
                pending("b", "shell", PendingKind::Approval),
                pending("c", "shell", PendingKind::Approval),
                pending("d", "lookup", PendingKind::External),
            ],
            r,
            &history,
        );
        assert!(matches!(&plans[0].1, Plan::Run(c) if c.arguments == "{\"raw\":\"a\"}"));
        let answers: Vec<(String, bool)> = plans[1..]
            .iter()
            .map(|(_, p)| match p {
                Plan::Answer(r) => (r.content.clone(), r.is_error),
                Plan::Run(_) => panic!("only the approved call runs"),
            })
            .collect();
        assert_eq!(
            answers[0],
            ("The user denied this call: too risky".into(), true)
        );
        assert!(answers[1].0.contains("automatically denied") && answers[1].1);
        assert!(answers[2].0.contains("automatically failed") && answers[2].1);
    }

    #[test]
    fn results_join_their_turn_in_call_order_even_after_later_messages() {
        let steer = ModelMessage::User {
            parts: vec![UserPart::Text { text: "s".into() }],
        };
        let mut history = vec![
            ModelMessage::Assistant {
                parts: vec![call("a"), call("b"), call("c")],
            },
            ModelMessage::Tool {
                results: vec![result("b", "ran")],
            },
            steer.clone(),
        ];
        insert_results(&mut history, vec![result("c", "C"), result("a", "A")]);
        let ModelMessage::Tool { results } = &history[1] else {
            panic!("{history:?}")
        };
        let ids: Vec<&str> = results.iter().map(|r| r.tool_call_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(history[2], steer);

        // Every call of the step was deferred: the tool message is created.
        let mut history = vec![
            ModelMessage::Assistant {
                parts: vec![call("x")],
            },
            steer,
        ];
        insert_results(&mut history, vec![result("x", "X")]);
        assert!(matches!(&history[1], ModelMessage::Tool { results } if results[0].content == "X"));
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn arguments_keep_unparseable_text() {
        assert_eq!(args_value("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(args_value(""), json!({}));
        assert_eq!(args_value("{oops"), json!("{oops"));
        assert_eq!(args_text(&json!("{oops")), "{oops");
        assert_eq!(args_text(&json!({"a": 1})), "{\"a\":1}");
    }
}
