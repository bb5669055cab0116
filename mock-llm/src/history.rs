//! The history rules a real provider enforces on a request's messages, checked on every
//! request the mock receives: a runtime that sends a history OpenAI or Anthropic would
//! refuse fails its test at once, with the rule named, instead of passing against a
//! lenient mock.
//!
//! Each wire format is read into one neutral sequence of [`Item`]s (an assistant turn with
//! its call ids, a tool result, any other turn), checking the per-message rules on the way
//! (empty messages, Anthropic's content rules); the pairing of calls and results is then
//! checked once on that sequence, the same way for both formats.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use crate::render::Protocol;

/// One history rule. [`Invariant::name`] is the stable word the 400 message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// The body has a `messages` array of objects whose roles the format knows.
    WellFormed,
    /// Every tool result answers a tool call of the assistant message right before it.
    ResultAnswersCall,
    /// The tool calls of one assistant message have distinct, present ids.
    UniqueCallIds,
    /// No tool call is answered twice.
    AnsweredOnce,
    /// Tool results come in the order of the calls they answer.
    AnsweredInOrder,
    /// Every tool call is answered before the next user or assistant turn, and before the
    /// end of the request.
    AnsweredBeforeNextTurn,
    /// No assistant message without text and without tool calls.
    AssistantNotEmpty,
    /// Anthropic: no message with empty content, no empty text block, no message whose
    /// only content is whitespace text.
    ContentNotEmpty,
    /// Anthropic: in a user message, the tool results come before anything else.
    ToolResultsFirst,
}

impl Invariant {
    /// The rule's stable name, e.g. `answered_in_order`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WellFormed => "well_formed",
            Self::ResultAnswersCall => "result_answers_call",
            Self::UniqueCallIds => "unique_call_ids",
            Self::AnsweredOnce => "answered_once",
            Self::AnsweredInOrder => "answered_in_order",
            Self::AnsweredBeforeNextTurn => "answered_before_next_turn",
            Self::AssistantNotEmpty => "assistant_not_empty",
            Self::ContentNotEmpty => "content_not_empty",
            Self::ToolResultsFirst => "tool_results_first",
        }
    }
}

/// A request that broke a rule: which one, and where (`messages[i]`, as the provider
/// counts them on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    fn new(invariant: Invariant, detail: impl Into<String>) -> Self {
        Self {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mock-llm: history invariant `{}` broken: {}",
            self.invariant.name(),
            self.detail
        )
    }
}

/// A message (or, for Anthropic, a block group of one) reduced to what pairing needs.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// An assistant message at `messages[at]` with tool calls (`None`: a call without id).
    Calls { at: usize, ids: Vec<Option<String>> },
    /// A tool result at `messages[at]` answering `id`.
    Result { at: usize, id: Option<String> },
    /// Any other turn: user text, system prompt, assistant text without calls.
    Turn { at: usize },
}

/// Checks `body`, a request in `protocol`'s wire format.
///
/// # Errors
/// The first rule the history breaks, in message order.
pub(crate) fn check(protocol: Protocol, body: &Value) -> Result<(), Violation> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(Violation::new(
            Invariant::WellFormed,
            "the body has no `messages` array",
        ));
    };
    let items = match protocol {
        Protocol::OpenAi => openai_items(messages)?,
        Protocol::Anthropic => anthropic_items(messages)?,
    };
    check_pairing(&items)
}

fn role(message: &Value, at: usize) -> Result<&str, Violation> {
    message.get("role").and_then(Value::as_str).ok_or_else(|| {
        Violation::new(
            Invariant::WellFormed,
            format!("messages[{at}] has no `role`"),
        )
    })
}

fn unknown_role(role: &str, at: usize) -> Violation {
    Violation::new(
        Invariant::WellFormed,
        format!("messages[{at}] has role `{role}`, which the format does not know"),
    )
}

fn empty_assistant(at: usize) -> Violation {
    Violation::new(
        Invariant::AssistantNotEmpty,
        format!("messages[{at}] is an assistant message with no text and no tool calls"),
    )
}

fn id_of(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// OpenAI Chat Completions: `tool` messages carry `tool_call_id`; an assistant message
/// carries `tool_calls` and/or text content.
fn openai_items(messages: &[Value]) -> Result<Vec<Item>, Violation> {
    let mut items = Vec::with_capacity(messages.len());
    for (at, message) in messages.iter().enumerate() {
        let item = match role(message, at)? {
            "system" | "developer" | "user" => Item::Turn { at },
            "tool" => Item::Result {
                at,
                id: id_of(message, "tool_call_id"),
            },
            "assistant" => {
                let ids: Vec<Option<String>> = message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(|calls| calls.iter().map(|c| id_of(c, "id")).collect())
                    .unwrap_or_default();
                if ids.is_empty() && !openai_has_text(message.get("content")) {
                    return Err(empty_assistant(at));
                }
                if ids.is_empty() {
                    Item::Turn { at }
                } else {
                    Item::Calls { at, ids }
                }
            }
            other => return Err(unknown_role(other, at)),
        };
        items.push(item);
    }
    Ok(items)
}

/// Content as a non-empty string, or parts one of which has non-empty text or a refusal.
fn openai_has_text(content: Option<&Value>) -> bool {
    match content {
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(parts)) => parts.iter().any(|part| {
            ["text", "refusal"].iter().any(|field| {
                part.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
            })
        }),
        _ => false,
    }
}

/// Anthropic Messages: `tool_use` blocks in an assistant message, `tool_result` blocks
/// (first) in the user message after it. Consecutive messages of one role are allowed:
/// the API merges them into one turn, so they are read as consecutive items.
fn anthropic_items(messages: &[Value]) -> Result<Vec<Item>, Violation> {
    let mut items = Vec::with_capacity(messages.len());
    for (at, message) in messages.iter().enumerate() {
        let role = role(message, at)?;
        if role != "user" && role != "assistant" {
            return Err(unknown_role(role, at));
        }
        let content = message.get("content");
        if role == "assistant" && !has_content(content) {
            return Err(empty_assistant(at));
        }
        let blocks = anthropic_blocks(content, at)?;
        if role == "assistant" {
            items.push(anthropic_assistant(&blocks, at)?);
        } else {
            anthropic_user(&blocks, at, &mut items)?;
        }
    }
    Ok(items)
}

/// Whether `content` is a non-empty string or list.
fn has_content(content: Option<&Value>) -> bool {
    match content {
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(blocks)) => !blocks.is_empty(),
        _ => false,
    }
}

/// The content as blocks (a string is one text block), checked against Anthropic's
/// content rules.
fn anthropic_blocks(content: Option<&Value>, at: usize) -> Result<Vec<Value>, Violation> {
    let empty =
        |what: &str| Violation::new(Invariant::ContentNotEmpty, format!("messages[{at}] {what}"));
    let blocks = match content {
        Some(Value::String(text)) => vec![serde_json::json!({"type": "text", "text": text})],
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => return Err(empty("has no content")),
    };
    if blocks.is_empty() {
        return Err(empty("has an empty content list"));
    }
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap_or(""))
        .collect();
    if texts.iter().any(|t| t.is_empty()) {
        return Err(empty("has an empty text block"));
    }
    if texts.len() == blocks.len() && texts.iter().all(|t| t.trim().is_empty()) {
        return Err(empty("has only whitespace text"));
    }
    Ok(blocks)
}

fn anthropic_assistant(blocks: &[Value], at: usize) -> Result<Item, Violation> {
    let ids: Vec<Option<String>> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| id_of(b, "id"))
        .collect();
    if !ids.is_empty() {
        return Ok(Item::Calls { at, ids });
    }
    let said = blocks.iter().any(|b| {
        matches!(
            b["type"].as_str(),
            Some("text" | "thinking" | "redacted_thinking")
        )
    });
    if said {
        Ok(Item::Turn { at })
    } else {
        Err(empty_assistant(at))
    }
}

/// A user message: its leading `tool_result` blocks, then one turn if anything else
/// follows them; a `tool_result` after other content breaks [`Invariant::ToolResultsFirst`].
fn anthropic_user(blocks: &[Value], at: usize, items: &mut Vec<Item>) -> Result<(), Violation> {
    let results = blocks
        .iter()
        .take_while(|b| b["type"] == "tool_result")
        .count();
    for block in &blocks[..results] {
        items.push(Item::Result {
            at,
            id: id_of(block, "tool_use_id"),
        });
    }
    if blocks[results..].iter().any(|b| b["type"] == "tool_result") {
        return Err(Violation::new(
            Invariant::ToolResultsFirst,
            format!("messages[{at}] has a tool_result block after other content"),
        ));
    }
    if results < blocks.len() {
        items.push(Item::Turn { at });
    }
    Ok(())
}

/// The calls of the last assistant message with calls, and how far their answers got.
struct Open<'a> {
    at: usize,
    ids: Vec<&'a str>,
    answered: usize,
}

impl Open<'_> {
    /// The calls still unanswered when `next` (a turn, or the end) arrives.
    fn close(&self, next: &str) -> Result<(), Violation> {
        let left = &self.ids[self.answered..];
        if left.is_empty() {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::AnsweredBeforeNextTurn,
            format!(
                "tool call(s) {} of messages[{}] have no result before {next}",
                left.join(", "),
                self.at
            ),
        ))
    }
}

/// The pairing rules on the neutral sequence: after an assistant message with calls come
/// exactly one result per call, in call order, before anything else.
fn check_pairing(items: &[Item]) -> Result<(), Violation> {
    let mut open: Option<Open<'_>> = None;
    for item in items {
        match item {
            Item::Calls { at, ids } => {
                if let Some(open) = &open {
                    open.close(&format!("messages[{at}]"))?;
                }
                open = Some(Open {
                    at: *at,
                    ids: call_ids(ids, *at)?,
                    answered: 0,
                });
            }
            Item::Result { at, id } => answer(open.as_mut(), *at, id.as_deref())?,
            Item::Turn { at } => {
                if let Some(open) = open.take() {
                    open.close(&format!("messages[{at}]"))?;
                }
            }
        }
    }
    match open {
        Some(open) => open.close("the end of the request"),
        None => Ok(()),
    }
}

/// The ids of one message's calls: each present, none twice.
fn call_ids(ids: &[Option<String>], at: usize) -> Result<Vec<&str>, Violation> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(id) = id.as_deref() else {
            return Err(Violation::new(
                Invariant::UniqueCallIds,
                format!("messages[{at}] has a tool call without an id"),
            ));
        };
        if !seen.insert(id) {
            return Err(Violation::new(
                Invariant::UniqueCallIds,
                format!("messages[{at}] has two tool calls with id {id}"),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

/// Checks one result at `messages[at]` against the open calls and counts it.
fn answer(open: Option<&mut Open<'_>>, at: usize, id: Option<&str>) -> Result<(), Violation> {
    let id = id.unwrap_or("(none)");
    let Some(open) = open else {
        return Err(Violation::new(
            Invariant::ResultAnswersCall,
            format!(
                "the tool result for {id} at messages[{at}] does not follow an assistant message with tool calls"
            ),
        ));
    };
    let Some(position) = open.ids.iter().position(|call| *call == id) else {
        return Err(Violation::new(
            Invariant::ResultAnswersCall,
            format!(
                "the tool result at messages[{at}] answers {id}, which is not a call of messages[{}]",
                open.at
            ),
        ));
    };
    if position < open.answered {
        return Err(Violation::new(
            Invariant::AnsweredOnce,
            format!("tool call {id} is answered a second time at messages[{at}]"),
        ));
    }
    if position > open.answered {
        return Err(Violation::new(
            Invariant::AnsweredInOrder,
            format!(
                "the result for {id} at messages[{at}] comes before the result for {}",
                open.ids[open.answered]
            ),
        ));
    }
    open.answered += 1;
    Ok(())
}

#[cfg(test)]
mod tests;
