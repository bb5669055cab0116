//! Request and response bodies of runs and run control: input parts, config overrides,
//! run / fork / execute / steer requests and what they answer.

use std::collections::BTreeMap;

use poem_openapi::{Object, Union, types::MaybeUndefined};

use super::capped::{Ident, Template, Title};
use super::events::Transport;
use super::presets::{ReasoningEffort, RunLimits, Thinking, Toolset};
use super::strict::no_null;
use super::text::Text;
use crate::core::execution;
use crate::core::execution::{Begun, RunTarget, SteerOutcome, Steered};
use crate::core::execution::{ExternalResult, ExternalTools, Interaction, Resolutions, RunError};
use ports::StreamKey;
use ports::ToolSchema;

/// Plain text.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct TextInput {
    pub text: Text,
}

/// A remote resource (http or https): image URLs are passed to vision models, anything
/// else is downloaded into the agent's environment.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct UrlInput {
    pub url: Text,
}

/// A file inside the agent's environment (relative to its working directory).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct FileInput {
    pub path: Text,
}

/// Inline data, written to a file in the agent's environment.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct BinaryInput {
    /// Base64, standard alphabet.
    pub data: Text,
    /// `type/subtype`, e.g. `image/png`.
    pub mime_type: Text,
    /// File name to save it under (no path separators).
    #[oai(nullable)]
    pub name: Option<Text>,
}

/// One part of the user's input, tagged by `type`.
#[derive(Union, Debug, Clone, PartialEq)]
#[oai(discriminator_name = "type", one_of)]
pub enum InputPart {
    #[oai(mapping = "text")]
    Text(TextInput),
    #[oai(mapping = "url")]
    Url(UrlInput),
    #[oai(mapping = "file")]
    File(FileInput),
    #[oai(mapping = "binary")]
    Binary(BinaryInput),
}

impl From<InputPart> for ports::InputPart {
    fn from(p: InputPart) -> Self {
        match p {
            InputPart::Text(t) => Self::Text { text: t.text.0 },
            InputPart::Url(u) => Self::Url { url: u.url.0 },
            InputPart::File(f) => Self::File { path: f.path.0 },
            InputPart::Binary(b) => Self::Binary {
                data: b.data.0,
                mime_type: b.mime_type.0,
                name: b.name.map(|n| n.0),
            },
        }
    }
}

/// Model settings changed for one run; absent fields keep the preset's value.
#[derive(Object, Debug, Clone, PartialEq, Default)]
pub struct ModelOverride {
    #[oai(nullable)]
    pub name: Option<Ident>,
    #[oai(
        nullable,
        validator(minimum(value = "1"), maximum(value = "4294967295"))
    )]
    pub context_window: Option<u32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2")))]
    pub temperature: Option<f64>,
    #[oai(
        nullable,
        validator(minimum(value = "1"), maximum(value = "4294967295"))
    )]
    pub max_tokens: Option<u32>,
    #[oai(deserialize_with = "no_null")]
    pub thinking: Option<Thinking>,
    #[oai(deserialize_with = "no_null")]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[oai(nullable)]
    pub prompt_cache: Option<bool>,
    /// Replaces the preset's fallback models.
    #[oai(nullable)]
    pub fallbacks: Option<Vec<Ident>>,
}

/// Changes to the preset for one run: model settings field by field, and the system
/// prompt and toolsets wholesale. Checked like a preset.
#[derive(Object, Debug, Clone, PartialEq, Default)]
pub struct ConfigOverride {
    #[oai(deserialize_with = "no_null")]
    pub model: Option<ModelOverride>,
    #[oai(nullable)]
    pub system_prompt: Option<Template>,
    #[oai(nullable)]
    pub toolsets: Option<Vec<Toolset>>,
    #[oai(deserialize_with = "no_null")]
    pub limits: Option<RunLimits>,
}

impl From<ConfigOverride> for execution::ConfigOverride {
    fn from(c: ConfigOverride) -> Self {
        Self {
            model: c.model.map(|m| execution::ModelOverride {
                name: m.name.map(|n| n.0),
                context_window: m.context_window,
                temperature: m.temperature,
                max_tokens: m.max_tokens,
                thinking: m.thinking.map(Into::into),
                reasoning_effort: m.reasoning_effort.map(Into::into),
                prompt_cache: m.prompt_cache,
                fallbacks: m.fallbacks.map(|f| f.into_iter().map(Into::into).collect()),
            }),
            system_prompt: c.system_prompt.map(|p| p.0),
            toolsets: c.toolsets.map(|t| t.into_iter().map(Into::into).collect()),
            limits: c.limits.map(Into::into),
        }
    }
}

/// A decision on a tool call that waited for approval.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct UserInteraction {
    /// A pending call of the parent session (see its `pending_tool_calls`).
    pub tool_call_id: Text,
    /// True runs the call now; false returns the denial (and `reason`) to the model.
    pub approved: bool,
    #[oai(nullable)]
    pub reason: Option<Text>,
}

/// The value of an external tool call, which the caller executed itself.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolResultInput {
    /// A pending external call of the parent session.
    pub tool_call_id: Text,
    /// What the model receives as the tool's output.
    pub output: Text,
    /// Marks the output as an error.
    #[oai(nullable)]
    pub is_error: Option<bool>,
}

/// A tool the caller executes itself, offered to the model for this run only. Its calls
/// end the run with status `awaiting_tool_results`; return their values in `tool_results`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ExternalTool {
    /// 1-64 characters of a-z, A-Z, 0-9, `_`, `-`; not a built-in tool's name.
    pub name: Text,
    /// What the tool does, written for the model.
    #[oai(nullable)]
    pub description: Option<Text>,
    /// JSON schema of the arguments object (default: an object without properties).
    #[oai(nullable)]
    pub parameters: Option<BTreeMap<String, serde_json::Value>>,
}

/// The pending-call answers of a request, for the run engine.
fn resolutions(
    interactions: Option<Vec<UserInteraction>>,
    results: Option<Vec<ToolResultInput>>,
) -> Resolutions {
    Resolutions {
        interactions: interactions
            .unwrap_or_default()
            .into_iter()
            .map(|i| Interaction {
                tool_call_id: i.tool_call_id.0,
                approved: i.approved,
                reason: i.reason.map(|r| r.0),
            })
            .collect(),
        results: results
            .unwrap_or_default()
            .into_iter()
            .map(|r| ExternalResult {
                tool_call_id: r.tool_call_id.0,
                output: r.output.0,
                is_error: r.is_error.unwrap_or(false),
            })
            .collect(),
    }
}

/// The declared external tools as the model is offered them.
fn external_tools(tools: Option<Vec<ExternalTool>>) -> Vec<ToolSchema> {
    tools
        .unwrap_or_default()
        .into_iter()
        .map(|t| ToolSchema {
            name: t.name.0,
            description: t.description.map(|d| d.0).unwrap_or_default(),
            parameters: t.parameters.map_or_else(
                || serde_json::json!({"type": "object", "properties": {}}),
                |schema| serde_json::Value::Object(schema.into_iter().collect()),
            ),
        })
        .collect()
}

/// What a run request carries besides where the run goes: at least one of `input`,
/// `user_interactions` (approve or deny the calls the parent session waits on) and
/// `tool_results` (values of its external calls); and the external tools of this run.
#[derive(Object, Debug, Clone, Default)]
pub struct RunInputs {
    #[oai(nullable)]
    pub input: Option<Vec<InputPart>>,
    /// Approve or deny the calls the parent session waits on.
    #[oai(nullable)]
    pub user_interactions: Option<Vec<UserInteraction>>,
    /// Values of the external calls the parent session waits on.
    #[oai(nullable)]
    pub tool_results: Option<Vec<ToolResultInput>>,
    #[oai(nullable)]
    pub external_tools: Option<Vec<ExternalTool>>,
    /// Pairs set on the run's conversation (added to an existing conversation's, a
    /// key's value replaced): keys of a-z, A-Z, 0-9, `_`, `-`, `.`, `:` (at most 64
    /// characters, 32 keys), values of at most 512 characters.
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, Text>>,
}

/// The fields every run-starting body shares besides its inputs.
pub struct RunOptions {
    pub preset_id: Option<Text>,
    pub config_override: Option<ConfigOverride>,
}

impl RunInputs {
    /// The domain request: these inputs with `options`, run at `target`, its events
    /// delivered by `transport` (the operation's).
    pub fn into_request(
        self,
        target: RunTarget,
        options: RunOptions,
        transport: ports::Transport,
    ) -> Result<execution::RunRequest, RunError> {
        let external_tools =
            ExternalTools::parse(external_tools(self.external_tools)).map_err(RunError::Invalid)?;
        Ok(execution::RunRequest {
            target,
            preset_id: options.preset_id.map(|p| p.0.into()),
            config_override: options.config_override.map(Into::into),
            input: self
                .input
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            resolutions: resolutions(self.user_interactions, self.tool_results),
            external_tools,
            history: Vec::new(),
            transport,
            metadata: strict_map(self.metadata.unwrap_or_default()),
        })
    }
}

/// Body of `conversations_run`. Without `conversation_id` a new conversation starts (with
/// `preset_id`, else the default preset); with it, the run continues the conversation's
/// latest committed session.
#[derive(Object, Debug, Clone, Default)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RunRequest {
    #[oai(nullable)]
    pub conversation_id: Option<Text>,
    #[oai(nullable)]
    pub preset_id: Option<Text>,
    #[oai(deserialize_with = "no_null")]
    pub config_override: Option<ConfigOverride>,
    #[oai(flatten)]
    pub inputs: RunInputs,
}

/// Body of `conversations_fire`: a continuation that receives the subagent outcomes
/// waiting in the mailbox, with optional input after them.
#[derive(Object, Debug, Clone, Default)]
#[oai(example, skip_serializing_if_is_none)]
pub struct FireRequest {
    #[oai(nullable)]
    pub preset_id: Option<Text>,
    #[oai(flatten)]
    pub inputs: RunInputs,
    #[oai(deserialize_with = "no_null")]
    pub config_override: Option<ConfigOverride>,
}

/// Body of `conversations_fork`: a new conversation from a session of this one (default:
/// its latest committed session).
#[derive(Object, Debug, Clone)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ForkRequest {
    #[oai(nullable)]
    pub preset_id: Option<Text>,
    pub input: Vec<InputPart>,
    #[oai(nullable)]
    pub from_session_id: Option<Text>,
    #[oai(deserialize_with = "no_null")]
    pub config_override: Option<ConfigOverride>,
}

/// Body of `sessions_execute`: a run from an explicit parent (or a new conversation when
/// there is none); `fork: true` puts it in a new conversation.
#[derive(Object, Debug, Clone)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ExecuteRequest {
    pub preset_id: Text,
    #[oai(nullable)]
    pub parent_session_id: Option<Text>,
    #[oai(nullable)]
    pub fork: Option<bool>,
    #[oai(deserialize_with = "no_null")]
    pub config_override: Option<ConfigOverride>,
    #[oai(flatten)]
    pub inputs: RunInputs,
}

impl ExecuteRequest {
    /// Where the run goes in the session DAG.
    pub fn target(&self) -> RunTarget {
        match &self.parent_session_id {
            None => RunTarget::NewConversation,
            Some(parent) => RunTarget::Parent {
                parent_session_id: parent.0.clone().into(),
                fork: self.fork.unwrap_or(false),
            },
        }
    }
}

/// Answer of a started run: attach to its events with `sessions_events` (or
/// `conversations_events`).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct RunAccepted {
    pub session_id: String,
    pub conversation_id: String,
    /// The event bus stream holding the run's events.
    pub stream_key: String,
}

impl RunAccepted {
    pub fn of(run: &Begun) -> Self {
        Self {
            session_id: run.session_id().to_string(),
            conversation_id: run.conversation_id().to_string(),
            stream_key: StreamKey::for_session(run.session_id()).0,
        }
    }
}

/// A running agent session: where its events are and how its starter receives them.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ActiveSession {
    pub session_id: String,
    pub stream_key: String,
    pub transport: Transport,
}

impl From<execution::ActiveSession> for ActiveSession {
    fn from(a: execution::ActiveSession) -> Self {
        Self {
            session_id: a.session_id.into(),
            stream_key: a.stream_key.0,
            transport: a.transport.into(),
        }
    }
}

/// Body of the steer operations: guidance injected at the next step boundary (the next model request).
#[derive(Object, Debug, Clone)]
#[oai(example, skip_serializing_if_is_none)]
pub struct SteerRequest {
    /// The guidance, in the parts and under the rules of a run's input: files, downloads
    /// and inline data are saved under the run's `.uploads/` directory and images reach
    /// the model inline.
    pub input: Vec<InputPart>,
    /// A client id for this message: repeating a steer with the same id queues it once.
    #[oai(nullable)]
    pub message_id: Option<Text>,
}

/// Answer of a steer.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SteerAccepted {
    pub session_id: String,
    pub message_id: String,
    /// False when a message with this id was queued before (nothing new was queued).
    pub queued: bool,
}

impl From<Steered> for SteerAccepted {
    fn from(s: Steered) -> Self {
        Self {
            session_id: s.session_id.into(),
            message_id: s.message_id,
            queued: s.outcome == SteerOutcome::Queued,
        }
    }
}

/// Answer of `sessions_interrupt`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SessionInterrupted {
    pub session_id: String,
    pub interrupted: bool,
}

/// Answer of `conversations_interrupt`: the sessions that were running and are stopping.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ConversationInterrupted {
    pub conversation_id: String,
    pub interrupted: Vec<String>,
}

/// Body of `conversations_update`: only given fields change; `null` clears title or
/// default preset.
#[derive(Object, Debug, Clone, Default)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ConversationUpdateRequest {
    #[oai(nullable)]
    pub title: MaybeUndefined<Title>,
    #[oai(nullable)]
    pub default_preset_id: MaybeUndefined<Ident>,
    #[oai(deserialize_with = "no_null")]
    pub status: Option<super::sessions::ConversationStatus>,
    /// Replaces the conversation's metadata (`{}` clears it).
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, Text>>,
}

impl From<ConversationUpdateRequest> for ports::ConversationPatch {
    fn from(r: ConversationUpdateRequest) -> Self {
        fn opt<T: Into<U>, U>(v: MaybeUndefined<T>) -> Option<Option<U>> {
            match v {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(t) => Some(Some(t.into())),
            }
        }
        Self {
            title: opt(r.title),
            default_preset_id: opt(r.default_preset_id),
            status: r.status.map(Into::into),
            metadata: r.metadata.map(strict_map),
        }
    }
}

/// A metadata map whose values were strings on the wire (a JSON `false` is refused, not
/// read as `"false"`).
fn strict_map(map: BTreeMap<String, Text>) -> ports::Metadata {
    map.into_iter().map(|(k, v)| (k, v.0)).collect()
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ParseFromJSON;

    use super::*;

    #[test]
    fn input_parts_parse_by_type_and_refuse_unknown_types() {
        let parts = serde_json::json!([
            {"type": "text", "text": "hi"},
            {"type": "url", "url": "https://x/y.png"},
            {"type": "file", "path": "a.txt"},
            {"type": "binary", "data": "aGk=", "mime_type": "text/plain", "name": "h.txt"}
        ]);
        let parsed = Vec::<InputPart>::parse_from_json(Some(parts)).unwrap();
        let domain: Vec<ports::InputPart> = parsed.into_iter().map(Into::into).collect();
        assert_eq!(
            domain,
            vec![
                ports::InputPart::Text { text: "hi".into() },
                ports::InputPart::Url {
                    url: "https://x/y.png".into()
                },
                ports::InputPart::File {
                    path: "a.txt".into()
                },
                ports::InputPart::Binary {
                    data: "aGk=".into(),
                    mime_type: "text/plain".into(),
                    name: Some("h.txt".into())
                },
            ]
        );
        assert!(
            InputPart::parse_from_json(Some(serde_json::json!({"type": "video", "url": "x"})))
                .is_err()
        );
        assert!(
            InputPart::parse_from_json(Some(serde_json::json!({"type": "text", "text": 5})))
                .is_err()
        );
    }

    #[test]
    fn an_override_changes_only_what_it_names() {
        let dto = ConfigOverride::parse_from_json(Some(
            serde_json::json!({"model": {"temperature": 0.5}}),
        ))
        .unwrap();
        let over = execution::ConfigOverride::from(dto);
        assert_eq!(
            over,
            execution::ConfigOverride {
                model: Some(execution::ModelOverride {
                    temperature: Some(0.5),
                    ..Default::default()
                }),
                system_prompt: None,
                toolsets: None,
                limits: None,
            }
        );
    }
}
