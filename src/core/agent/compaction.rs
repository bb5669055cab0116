//! Context compaction: when the next request would pass ~80 % of the model's context
//! window, the older part of the history is summarized by the model into one message and
//! the recent part is kept verbatim.
//!
//! The kept tail is the longest recent part that fits half the window, cut only where a
//! message is not a tool result (so every kept result still follows its call). It may
//! start inside the current turn: a long tool loop after one user message has its older
//! exchanges summarized too. An earlier summary is summarized again only together with
//! newer messages, never alone, and the summary is capped, so after compaction the request
//! is well below the threshold whenever the latest exchange itself fits.

use ports::{AssistantPart, ModelMessage, ModelSettings, ToolResult, ToolSchema, UserPart};

/// Share of the context window a request may fill before compaction, in percent.
const THRESHOLD_PERCENT: u64 = 80;

/// Share of the window the kept tail and the fixed part of the request (system prompt and
/// tools) may fill together, in percent.
const KEPT_PERCENT: u64 = 50;

/// Share of the window the summary may fill, in percent; a longer one is cut.
const SUMMARY_PERCENT: u64 = 15;

/// Characters of one tool result the summarizing request reads: the summary needs what a
/// result established, not all of a long listing.
const SUMMARY_RESULT_CHARS: usize = 4_000;

/// Opens the message that holds a summary.
const SUMMARY_HEADING: &str = "[Summary of the earlier conversation]\n";

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

/// Where the kept tail starts, for a request whose system prompt and tools take
/// `overhead` tokens: the earliest cut whose tail fits, else the latest possible cut (the
/// last exchange alone). `None` when there is nothing new to summarize.
pub fn split_point(history: &[ModelMessage], window: u64, overhead: u64) -> Option<usize> {
    // A leading summary is summarized again only with at least one newer message.
    let first = usize::from(history.first().is_some_and(is_summary)) + 1;
    let budget = (window * KEPT_PERCENT / 100).saturating_sub(overhead);
    let mut tail = 0u64;
    let mut fits = None;
    let mut latest = None;
    for k in (first..history.len()).rev() {
        tail += (message_chars(&history[k]) / 4) as u64;
        if matches!(history[k], ModelMessage::Tool { .. }) {
            continue;
        }
        latest.get_or_insert(k);
        if tail <= budget {
            fits = Some(k);
        }
    }
    fits.or(latest)
}

/// Whether `message` is a summary left by an earlier compaction.
fn is_summary(message: &ModelMessage) -> bool {
    matches!(message, ModelMessage::User { parts }
        if matches!(parts.first(), Some(UserPart::Text { text }) if text.starts_with(SUMMARY_HEADING)))
}

/// The summarizing request's history: `old` with long tool results cut, then the
/// instruction.
pub fn summary_request(old: &[ModelMessage]) -> Vec<ModelMessage> {
    let mut messages: Vec<ModelMessage> = old
        .iter()
        .map(|m| match m {
            ModelMessage::Tool { results } => ModelMessage::Tool {
                results: results.iter().map(cut_result).collect(),
            },
            other => other.clone(),
        })
        .collect();
    messages.push(ModelMessage::User {
        parts: vec![UserPart::Text {
            text: SUMMARY_PROMPT.to_owned(),
        }],
    });
    messages
}

fn cut_result(result: &ToolResult) -> ToolResult {
    let chars = result.content.chars().count();
    let content = if chars > SUMMARY_RESULT_CHARS {
        let head: String = result.content.chars().take(SUMMARY_RESULT_CHARS).collect();
        format!(
            "{head}\n[… {} more characters]",
            chars - SUMMARY_RESULT_CHARS
        )
    } else {
        result.content.clone()
    };
    ToolResult {
        content,
        images: Vec::new(),
        ..result.clone()
    }
}

/// The history after compaction: the summary (capped at [`SUMMARY_PERCENT`] of `window`)
/// as a user message, then the kept tail.
pub fn compacted(summary: &str, tail: Vec<ModelMessage>, window: u64) -> Vec<ModelMessage> {
    let cap = usize::try_from(window * SUMMARY_PERCENT / 100 * 4).unwrap_or(usize::MAX);
    let summary: String = summary.chars().take(cap).collect();
    let mut out = Vec::with_capacity(tail.len() + 1);
    out.push(ModelMessage::User {
        parts: vec![UserPart::Text {
            text: format!("{SUMMARY_HEADING}{summary}"),
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

    fn call(id: &str) -> ModelMessage {
        ModelMessage::Assistant {
            parts: vec![AssistantPart::ToolCall {
                id: id.into(),
                name: "ls".into(),
                arguments: "{}".into(),
            }],
        }
    }

    fn result(id: &str, chars: usize) -> ModelMessage {
        ModelMessage::Tool {
            results: vec![ToolResult {
                tool_call_id: id.into(),
                tool_name: "ls".into(),
                content: "r".repeat(chars),
                is_error: false,
                images: Vec::new(),
            }],
        }
    }

    #[test]
    fn keeps_the_longest_tail_that_fits() {
        let big = "x".repeat(4_000);
        let (c, d) = ("c".repeat(40), "d".repeat(40));
        let history = vec![user(&big), assistant(&big), user(&c), assistant(&d)];
        // Window 1000: half is 500 tokens; the tail from "c" fits, from the big answer not.
        assert_eq!(split_point(&history, 1_000, 0), Some(2));
        // A large system prompt leaves less room: only the last message is kept.
        assert_eq!(split_point(&history, 1_000, 485), Some(3));
        assert_eq!(split_point(&history[..1], 1_000, 0), None);
        let out = compacted("S", history[2..].to_vec(), 1_000);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1], user(&c));
    }

    #[test]
    fn a_long_turn_is_cut_between_exchanges_never_before_a_result() {
        let mut history = vec![user("do it")];
        for i in 0..20 {
            history.push(call(&format!("c{i}")));
            history.push(result(&format!("c{i}"), 400));
        }
        let k = split_point(&history, 1_000, 0).unwrap();
        assert!(k > 1, "older exchanges of the current turn are summarized");
        assert!(matches!(history[k], ModelMessage::Assistant { .. }));
        let tail_tokens: usize = history[k..].iter().map(message_chars).sum::<usize>() / 4;
        assert!(tail_tokens <= 500, "{tail_tokens}");
        // The last exchange alone is kept when nothing fits.
        assert_eq!(split_point(&history, 10, 0), Some(history.len() - 2));
    }

    #[test]
    fn a_summary_is_only_summarized_with_newer_messages() {
        let summary = compacted("earlier", Vec::new(), 1_000).remove(0);
        assert!(is_summary(&summary));
        let history = vec![summary.clone(), call("c1"), result("c1", 10)];
        assert_eq!(split_point(&history, 1_000, 0), None, "nothing new to add");
        let history = vec![summary, user("more"), call("c1"), result("c1", 4_000)];
        assert_eq!(split_point(&history, 1_000, 0), Some(2));
    }

    #[test]
    fn the_summary_request_cuts_long_results_and_the_summary_is_capped() {
        let request = summary_request(&[user("go"), call("c1"), result("c1", 10_000)]);
        let ModelMessage::Tool { results } = &request[2] else {
            panic!()
        };
        assert!(results[0].content.ends_with("[… 6000 more characters]"));
        assert!(matches!(&request[3], ModelMessage::User { .. }));
        let out = compacted(&"s".repeat(10_000), Vec::new(), 1_000);
        let ModelMessage::User { parts } = &out[0] else {
            panic!()
        };
        let UserPart::Text { text } = &parts[0] else {
            panic!()
        };
        assert_eq!(text.len(), SUMMARY_HEADING.len() + 600);
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
