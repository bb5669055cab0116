//! The built-in `test:` models: deterministic, no network, several deltas per answer, so
//! the quick start, the end-to-end tests and the benchmarks run without any provider.
//!
//! - `test:echo` answers `echo: <last user text>`, one delta per word.
//! - `test:call:<tool>` calls `<tool>` with the last user text, verbatim, as its JSON
//!   arguments (in several fragments); once the history ends with the tool's results it
//!   answers `<tool>: <result content>`.

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use ports::{
    AssistantPart, ModelDelta, ModelError, ModelMessage, ModelProvider, ModelRequest, ModelStream,
    Usage, UserPart,
};

/// Argument fragments a `test:call:` tool call is split into (fewer for short texts).
const ARG_FRAGMENTS: usize = 3;

/// The `test:` models. Accepts the model name with or without the `test:` prefix.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestModel;

impl TestModel {
    /// The test models need no configuration.
    pub fn new() -> Self {
        Self
    }

    /// The whole answer, or `UnknownModel`; the stream only replays it.
    pub fn answer(&self, request: &ModelRequest) -> Result<Vec<ModelDelta>, ModelError> {
        let name = request
            .model
            .strip_prefix("test:")
            .unwrap_or(&request.model);
        let mut deltas = if name == "echo" {
            words(&format!("echo: {}", last_user_text(&request.messages)))
        } else if let Some(tool) = name.strip_prefix("call:").filter(|t| !t.is_empty()) {
            call(tool, &request.messages)
        } else {
            return Err(ModelError::UnknownModel(format!("test:{name}")));
        };
        let output: usize = deltas.iter().map(delta_chars).sum();
        let prompt = tokens(prompt_chars(request));
        let completion = tokens(output);
        let finish = match deltas.first() {
            Some(ModelDelta::ToolCallStart { .. }) => "tool_calls",
            _ => "stop",
        };
        deltas.push(ModelDelta::Usage(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            model_requests: 1,
            ..Usage::default()
        }));
        deltas.push(ModelDelta::Finish {
            reason: finish.to_owned(),
        });
        Ok(deltas)
    }
}

#[async_trait]
impl ModelProvider for TestModel {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        let deltas = self.answer(request)?;
        Ok(stream::iter(deltas.into_iter().map(Ok)).boxed())
    }
}

fn call(tool: &str, messages: &[ModelMessage]) -> Vec<ModelDelta> {
    if let Some(ModelMessage::Tool { results }) = messages.last() {
        let content: Vec<&str> = results.iter().map(|r| r.content.as_str()).collect();
        return words(&format!("{tool}: {}", content.join("\n")));
    }
    let calls_so_far = messages
        .iter()
        .filter_map(|m| match m {
            ModelMessage::Assistant { parts } => Some(parts),
            _ => None,
        })
        .flatten()
        .filter(|p| matches!(p, AssistantPart::ToolCall { .. }))
        .count();
    let mut deltas = vec![ModelDelta::ToolCallStart {
        index: 0,
        id: format!("call_{}", calls_so_far + 1),
        name: tool.to_owned(),
    }];
    let args: Vec<char> = last_user_text(messages).chars().collect();
    let size = args.len().div_ceil(ARG_FRAGMENTS).max(1);
    deltas.extend(args.chunks(size).map(|c| ModelDelta::ToolCallArgs {
        index: 0,
        fragment: c.iter().collect(),
    }));
    deltas
}

/// The text parts of the last user message, joined by newlines.
fn last_user_text(messages: &[ModelMessage]) -> String {
    let Some(parts) = messages.iter().rev().find_map(|m| match m {
        ModelMessage::User { parts } => Some(parts),
        _ => None,
    }) else {
        return String::new();
    };
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            UserPart::Text { text } => Some(text.as_str()),
            UserPart::Image { .. } => None,
        })
        .collect();
    texts.join("\n")
}

/// One text delta per word, each keeping its following space.
fn words(text: &str) -> Vec<ModelDelta> {
    text.split_inclusive(' ')
        .map(|w| ModelDelta::Text(w.to_owned()))
        .collect()
}

fn delta_chars(delta: &ModelDelta) -> usize {
    match delta {
        ModelDelta::Text(t) => t.chars().count(),
        ModelDelta::ToolCallStart { name, .. } => name.chars().count(),
        ModelDelta::ToolCallArgs { fragment, .. } => fragment.chars().count(),
        _ => 0,
    }
}

fn prompt_chars(request: &ModelRequest) -> usize {
    let parts: usize = request
        .messages
        .iter()
        .map(|m| match m {
            ModelMessage::User { parts } => parts
                .iter()
                .map(|p| match p {
                    UserPart::Text { text } => text.chars().count(),
                    UserPart::Image { .. } => 0,
                })
                .sum::<usize>(),
            ModelMessage::Assistant { parts } => parts
                .iter()
                .map(|p| match p {
                    AssistantPart::Text { text } | AssistantPart::Thinking { text, .. } => {
                        text.chars().count()
                    }
                    AssistantPart::RedactedThinking { .. } => 0,
                    AssistantPart::ToolCall { arguments, .. } => arguments.chars().count(),
                })
                .sum::<usize>(),
            ModelMessage::Tool { results } => results
                .iter()
                .map(|r| r.content.chars().count())
                .sum::<usize>(),
        })
        .sum();
    request.system.chars().count() + parts
}

/// About four characters per token, like real tokenizers on English text.
fn tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}
