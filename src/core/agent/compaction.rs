//! Context compaction: when the next request would pass ~80 % of the model's context
//! window, the older part of the history is summarized by the model into one message and
//! the latest turn is kept verbatim.

use ports::{AssistantPart, ModelMessage, ModelSettings, ToolSchema, UserPart};

/// Share of the context window a request may fill before compaction, in percent.
const THRESHOLD_PERCENT: u64 = 80;

/// Instructions for the summarizing request.
pub const SUMMARY_PROMPT: &str = "Summarize the conversation so far so that the work can \
continue from the summary alone: the user's goal and constraints, decisions made, what is done, \
what remains, and every fact, file path, command and result still needed. Answer with the \
summary only.";

/// The model's context window in tokens: the preset's, else a known default by model name.
pub fn context_window(model: &ModelSettings) -> u64 {
    if let Some(window) = model.context_window {
        return u64::from(window);
    }
    let name = model.name.to_ascii_lowercase();
    let bare = name.rsplit(':').next().unwrap_or(&name);
    if bare.starts_with("claude") {
        200_000
    } else if bare.starts_with("gpt-4.1") || bare.starts_with("gemini") {
        1_000_000
    } else if bare.starts_with("gpt-5") || bare.starts_with("o3") || bare.starts_with("o4") {
        200_000
    } else {
        128_000
    }
}

/// A cheap token estimate (about four characters per token) of a request.
pub fn estimate_tokens(system: &str, history: &[ModelMessage], tools: &[ToolSchema]) -> u64 {
    let mut chars = system.len();
    for message in history {
        chars += message_chars(message);
    }
    for tool in tools {
        chars += tool.name.len() + tool.description.len() + tool.parameters.to_string().len();
    }
    (chars / 4) as u64
}

fn message_chars(message: &ModelMessage) -> usize {
    match message {
        ModelMessage::User { parts } => parts
            .iter()
            .map(|p| match p {
                UserPart::Text { text } => text.len(),
                // Providers bill images at roughly a thousand tokens.
                UserPart::Image { .. } => 4_000,
            })
            .sum(),
        ModelMessage::Assistant { parts } => parts
            .iter()
            .map(|p| match p {
                AssistantPart::Text { text } | AssistantPart::Thinking { text, .. } => text.len(),
                AssistantPart::RedactedThinking { data } => data.len(),
                AssistantPart::ToolCall {
                    name, arguments, ..
                } => name.len() + arguments.len(),
            })
            .sum(),
        ModelMessage::Tool { results } => results
            .iter()
            .map(|r| r.content.len() + r.images.len() * 4_000)
            .sum(),
    }
}

/// Whether a request of `estimate` tokens needs compaction first.
pub fn needs_compaction(estimate: u64, window: u64) -> bool {
    estimate * 100 > window * THRESHOLD_PERCENT
}

/// Where the kept tail starts: the last user message that opens a turn, when there is
/// older history before it. `None` when there is nothing to summarize.
pub fn split_point(history: &[ModelMessage]) -> Option<usize> {
    let last_user = history
        .iter()
        .rposition(|m| matches!(m, ModelMessage::User { .. }))?;
    (last_user > 0).then_some(last_user)
}

/// The history after compaction: the summary as a user message, then the kept tail.
pub fn compacted(summary: &str, tail: Vec<ModelMessage>) -> Vec<ModelMessage> {
    let mut out = Vec::with_capacity(tail.len() + 1);
    out.push(ModelMessage::User {
        parts: vec![UserPart::Text {
            text: format!("[Summary of the earlier conversation]\n{summary}"),
        }],
    });
    out.extend(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> ModelMessage {
        ModelMessage::User {
            parts: vec![UserPart::Text { text: t.into() }],
        }
    }

    fn assistant(t: &str) -> ModelMessage {
        ModelMessage::Assistant {
            parts: vec![AssistantPart::Text { text: t.into() }],
        }
    }

    #[test]
    fn triggers_above_eighty_percent_of_the_window() {
        assert!(!needs_compaction(800, 1000));
        assert!(needs_compaction(801, 1000));
    }

    #[test]
    fn keeps_the_last_turn_and_summarizes_the_rest() {
        let history = vec![user("a"), assistant("b"), user("c"), assistant("d")];
        assert_eq!(split_point(&history), Some(2));
        assert_eq!(split_point(&history[..2]), None);
        let out = compacted("S", history[2..].to_vec());
        assert_eq!(out.len(), 3);
        assert_eq!(out[1], user("c"));
    }

    #[test]
    fn window_comes_from_the_preset_or_the_model_family() {
        let mut m = ModelSettings {
            name: "anthropic:claude-sonnet-4".into(),
            ..Default::default()
        };
        assert_eq!(context_window(&m), 200_000);
        m.context_window = Some(4096);
        assert_eq!(context_window(&m), 4096);
        m.context_window = None;
        m.name = "gw@openai:qwen3".into();
        assert_eq!(context_window(&m), 128_000);
    }

    #[test]
    fn estimate_counts_every_part() {
        let h = vec![user(&"x".repeat(400)), assistant(&"y".repeat(400))];
        assert_eq!(estimate_tokens(&"s".repeat(200), &h, &[]), 250);
    }
}
