//! Each rule with one history that keeps it and one that breaks it, in both wire formats.

use serde_json::{Value, json};

use super::{Invariant, check};
use crate::render::Protocol;

/// The same conversation shapes in each wire format.
trait Wire {
    const PROTOCOL: Protocol;
    fn user(text: &str) -> Value;
    fn assistant(text: &str) -> Value;
    /// An assistant message calling tools with these ids.
    fn calls(ids: &[&str]) -> Value;
    /// The results for these ids, as the format sends them (OpenAI: one message each;
    /// Anthropic: one user message).
    fn results(ids: &[&str]) -> Vec<Value>;
}

struct OpenAi;
struct Anthropic;

impl Wire for OpenAi {
    const PROTOCOL: Protocol = Protocol::OpenAi;
    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }
    fn assistant(text: &str) -> Value {
        json!({"role": "assistant", "content": text})
    }
    fn calls(ids: &[&str]) -> Value {
        let calls: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"id": id, "type": "function",
                             "function": {"name": "shell", "arguments": "{}"}})
            })
            .collect();
        json!({"role": "assistant", "content": null, "tool_calls": calls})
    }
    fn results(ids: &[&str]) -> Vec<Value> {
        ids.iter()
            .map(|id| json!({"role": "tool", "tool_call_id": id, "content": "ok"}))
            .collect()
    }
}

impl Wire for Anthropic {
    const PROTOCOL: Protocol = Protocol::Anthropic;
    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"type": "text", "text": text}]})
    }
    fn assistant(text: &str) -> Value {
        json!({"role": "assistant", "content": [{"type": "text", "text": text}]})
    }
    fn calls(ids: &[&str]) -> Value {
        let blocks: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "tool_use", "id": id, "name": "shell", "input": {}}))
            .collect();
        json!({"role": "assistant", "content": blocks})
    }
    fn results(ids: &[&str]) -> Vec<Value> {
        let blocks: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": "ok"}))
            .collect();
        vec![json!({"role": "user", "content": blocks})]
    }
}

/// The messages of a history built from pieces (single messages or result groups).
fn history(pieces: Vec<Vec<Value>>) -> Value {
    json!({"model": "m", "messages": pieces.concat()})
}

fn one(message: Value) -> Vec<Value> {
    vec![message]
}

fn passes<W: Wire>(body: &Value) {
    if let Err(v) = check(W::PROTOCOL, body) {
        panic!("{:?} refused a valid history: {v}\n{body:#}", W::PROTOCOL);
    }
}

fn breaks<W: Wire>(body: &Value, invariant: Invariant) {
    match check(W::PROTOCOL, body) {
        Ok(()) => panic!("{:?} accepted a broken history\n{body:#}", W::PROTOCOL),
        Err(v) => {
            assert_eq!(v.invariant, invariant, "{v}");
            assert!(v.to_string().contains(invariant.name()), "{v}");
        }
    }
}

/// Both formats, so each rule below is one generic function run twice.
macro_rules! on_both_formats {
    ($($name:ident),* $(,)?) => {
        mod openai {
            $( #[test] fn $name() { super::$name::<super::OpenAi>(); } )*
        }
        mod anthropic {
            $( #[test] fn $name() { super::$name::<super::Anthropic>(); } )*
        }
    };
}

on_both_formats!(
    a_full_tool_round_trip_passes,
    result_answers_call,
    unique_call_ids,
    answered_once,
    answered_in_order,
    answered_before_next_turn,
    assistant_not_empty,
    well_formed,
);

fn a_full_tool_round_trip_passes<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("count the files")),
        one(W::calls(&["c1", "c2"])),
        W::results(&["c1", "c2"]),
        one(W::assistant("3 files")),
        one(W::user("thanks")),
        one(W::calls(&["c3"])),
        W::results(&["c3"]),
    ]));
}

fn result_answers_call<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("go")),
        one(W::calls(&["c1"])),
        W::results(&["c1"]),
    ]));
    // A result with no call before it.
    breaks::<W>(
        &history(vec![one(W::user("go")), W::results(&["c1"])]),
        Invariant::ResultAnswersCall,
    );
    // A result for another id.
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1"])),
            W::results(&["c9"]),
        ]),
        Invariant::ResultAnswersCall,
    );
    // A result for a call of an earlier assistant message, not the one right before.
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1"])),
            W::results(&["c1"]),
            one(W::assistant("done")),
            W::results(&["c1"]),
        ]),
        Invariant::ResultAnswersCall,
    );
}

fn unique_call_ids<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("go")),
        one(W::calls(&["c1", "c2"])),
        W::results(&["c1", "c2"]),
    ]));
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1", "c1"])),
            W::results(&["c1", "c1"]),
        ]),
        Invariant::UniqueCallIds,
    );
}

fn answered_once<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("go")),
        one(W::calls(&["c1"])),
        W::results(&["c1"]),
        one(W::user("again")),
    ]));
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1", "c2"])),
            W::results(&["c1", "c1", "c2"]),
        ]),
        Invariant::AnsweredOnce,
    );
}

fn answered_in_order<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("go")),
        one(W::calls(&["c1", "c2", "c3"])),
        W::results(&["c1", "c2", "c3"]),
    ]));
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1", "c2"])),
            W::results(&["c2", "c1"]),
        ]),
        Invariant::AnsweredInOrder,
    );
}

fn answered_before_next_turn<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("go")),
        one(W::calls(&["c1", "c2"])),
        W::results(&["c1", "c2"]),
        one(W::user("and now?")),
    ]));
    // One call of two answered, then the user speaks.
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1", "c2"])),
            W::results(&["c1"]),
            one(W::user("and now?")),
        ]),
        Invariant::AnsweredBeforeNextTurn,
    );
    // A call nobody answered at the end of the request.
    breaks::<W>(
        &history(vec![one(W::user("go")), one(W::calls(&["c1"]))]),
        Invariant::AnsweredBeforeNextTurn,
    );
    // Calls answered after another assistant message.
    breaks::<W>(
        &history(vec![
            one(W::user("go")),
            one(W::calls(&["c1"])),
            one(W::assistant("thinking aloud")),
            W::results(&["c1"]),
        ]),
        Invariant::AnsweredBeforeNextTurn,
    );
}

fn assistant_not_empty<W: Wire>() {
    passes::<W>(&history(vec![
        one(W::user("hi")),
        one(W::assistant("hello")),
    ]));
    for empty in [json!(""), json!(null), json!([])] {
        breaks::<W>(
            &history(vec![
                one(W::user("hi")),
                one(json!({"role": "assistant", "content": empty})),
                one(W::user("hello?")),
            ]),
            Invariant::AssistantNotEmpty,
        );
    }
}

fn well_formed<W: Wire>() {
    passes::<W>(&history(vec![one(W::user("hi"))]));
    breaks::<W>(&json!({"model": "m"}), Invariant::WellFormed);
    breaks::<W>(
        &history(vec![one(json!({"role": "robot", "content": "beep"}))]),
        Invariant::WellFormed,
    );
    breaks::<W>(
        &history(vec![one(json!({"content": "who am I"}))]),
        Invariant::WellFormed,
    );
}

// ----------------------------------------------------------- format-specific rules

#[test]
fn openai_tool_results_may_be_followed_by_a_user_message_with_their_images() {
    passes::<OpenAi>(&history(vec![
        one(OpenAi::user("look")),
        one(
            json!({"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]}),
        ),
        OpenAi::results(&["c1"]),
        one(json!({"role": "user", "content": [
            {"type": "text", "text": "Images returned by read (call c1):"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]})),
        one(json!({"role": "system", "content": "A developer note."})),
    ]));
}

#[test]
fn anthropic_merges_consecutive_turns_so_they_pass() {
    passes::<Anthropic>(&history(vec![
        one(Anthropic::user("one")),
        one(Anthropic::user("two")),
        one(Anthropic::calls(&["c1", "c2"])),
        Anthropic::results(&["c1"]),
        Anthropic::results(&["c2"]),
        one(Anthropic::user("thanks")),
        one(Anthropic::assistant("you")),
        one(Anthropic::assistant("are welcome")),
    ]));
}

#[test]
fn anthropic_content_not_empty() {
    passes::<Anthropic>(&history(vec![
        one(json!({"role": "user", "content": "plain string"})),
        one(json!({"role": "assistant", "content": [
            {"type": "text", "text": " "}, {"type": "text", "text": "real"}]})),
    ]));
    for content in [
        json!(""),
        json!([]),
        json!([{"type": "text", "text": ""}, {"type": "text", "text": "x"}]),
        json!([{"type": "text", "text": " \n"}]),
    ] {
        breaks::<Anthropic>(
            &history(vec![one(json!({"role": "user", "content": content}))]),
            Invariant::ContentNotEmpty,
        );
    }
    breaks::<Anthropic>(
        &history(vec![
            one(Anthropic::user("hi")),
            one(json!({"role": "assistant", "content": "  "})),
        ]),
        Invariant::ContentNotEmpty,
    );
}

#[test]
fn anthropic_thinking_alone_is_not_an_empty_assistant() {
    passes::<Anthropic>(&history(vec![
        one(Anthropic::user("hi")),
        one(json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"}]})),
        one(Anthropic::user("well?")),
    ]));
    breaks::<Anthropic>(
        &history(vec![
            one(Anthropic::user("hi")),
            one(json!({"role": "assistant", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]})),
        ]),
        Invariant::AssistantNotEmpty,
    );
}

#[test]
fn anthropic_tool_results_first() {
    passes::<Anthropic>(&history(vec![
        one(Anthropic::user("go")),
        one(Anthropic::calls(&["c1"])),
        one(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "ok"},
            {"type": "text", "text": "and also this"}]})),
    ]));
    breaks::<Anthropic>(
        &history(vec![
            one(Anthropic::user("go")),
            one(Anthropic::calls(&["c1"])),
            one(json!({"role": "user", "content": [
                {"type": "text", "text": "here:"},
                {"type": "tool_result", "tool_use_id": "c1", "content": "ok"}]})),
        ]),
        Invariant::ToolResultsFirst,
    );
}

#[test]
fn anthropic_system_is_not_a_message_role() {
    breaks::<Anthropic>(
        &history(vec![one(json!({"role": "system", "content": "be terse"}))]),
        Invariant::WellFormed,
    );
}

#[test]
fn the_message_names_the_rule_and_the_place() {
    let body = history(vec![
        one(OpenAi::user("go")),
        one(OpenAi::calls(&["c1", "c2"])),
        OpenAi::results(&["c2", "c1"]),
    ]);
    let v = check(Protocol::OpenAi, &body).unwrap_err();
    assert_eq!(
        v.to_string(),
        "mock-llm: history invariant `answered_in_order` broken: \
         the result for c2 at messages[2] comes before the result for c1"
    );
}
