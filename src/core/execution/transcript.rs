//! The transcript of a run: its events written as `display_messages` (spec 04), which a UI
//! or an IM gateway renders without replaying deltas. Entries keep the order in which they
//! started streaming; a text block cut by an interrupt keeps what arrived.

use std::collections::HashMap;

use ports::{
    ContentKind, DisplayMessage, EventEnvelope, EventPayload, SubagentCompleted, SubagentStarted,
    ToolCallResultPayload, ToolCallStart, ToolCallStatus,
};

/// The transcript of one run: the user's input (when there was any), then what the events
/// say, then `failure` (code, message) when the run failed.
pub fn display_messages<'a>(
    user_text: Option<&str>,
    events: impl IntoIterator<Item = &'a EventEnvelope>,
    failure: Option<(&str, &str)>,
) -> Vec<DisplayMessage> {
    let mut c = TranscriptBuilder::default();
    if let Some(text) = user_text.filter(|t| !t.is_empty()) {
        c.out.push(DisplayMessage::User {
            text: text.to_owned(),
        });
    }
    for event in events {
        c.add(event);
    }
    let mut out = c.out;
    if let Some((code, message)) = failure {
        out.push(DisplayMessage::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }
    out
}

#[derive(Default)]
struct TranscriptBuilder {
    out: Vec<DisplayMessage>,
    /// Open text/thinking block per (agent, kind): index into `out`.
    open: HashMap<(String, ContentKind), usize>,
    /// Tool calls by id: index into `out`.
    calls: HashMap<String, usize>,
    /// Subagent blocks by the subagent's agent id.
    subagents: HashMap<String, usize>,
}

impl TranscriptBuilder {
    fn add(&mut self, event: &EventEnvelope) {
        let agent = event.agent_id.as_str();
        match &event.payload {
            EventPayload::ContentDelta(d) => {
                if let Some(text) = self.text_of(agent, d.kind) {
                    text.push_str(&d.delta);
                }
            }
            EventPayload::ContentDone(d) => {
                if let Some(text) = self.text_of(agent, d.kind) {
                    text.clone_from(&d.text);
                }
                self.open.remove(&(agent.to_owned(), d.kind));
            }
            EventPayload::MessageEnd(_) => self.open.retain(|(a, _), _| a != agent),
            EventPayload::ToolCallStart(s) => self.start_call(agent, s),
            EventPayload::ToolCallArgsDelta(d) => {
                if let Some(DisplayMessage::ToolCall { args, .. }) = self.call(&d.tool_call_id) {
                    args.push_str(&d.delta);
                }
            }
            EventPayload::ToolCallResult(r) => self.record_result(r),
            EventPayload::ToolCallEnd(e) => {
                if let Some(DisplayMessage::ToolCall { status, .. }) = self.call(&e.tool_call_id) {
                    *status = e.status;
                }
            }
            EventPayload::SubagentStarted(s) => self.start_subagent(s),
            EventPayload::SubagentCompleted(s) => self.end_subagent(s),
            EventPayload::SteeringInjected(s) => self.out.push(DisplayMessage::User {
                text: s.text.clone(),
            }),
            EventPayload::Warning(w) => self.out.push(DisplayMessage::Warning {
                code: w.code.clone(),
                message: w.message.clone(),
            }),
            EventPayload::RunStarted(_)
            | EventPayload::RunCompleted(_)
            | EventPayload::RunFailed(_)
            | EventPayload::MessageStart(_)
            | EventPayload::CompactStarted(_)
            | EventPayload::CompactCompleted(_)
            | EventPayload::HandoffCompleted(_)
            | EventPayload::InterruptReceived(_)
            | EventPayload::UsageSnapshot(_) => {}
        }
    }

    /// The text of the open block of this agent and kind.
    fn text_of(&mut self, agent: &str, kind: ContentKind) -> Option<&mut String> {
        let index = self.block(agent, kind);
        match self.out.get_mut(index)? {
            DisplayMessage::AssistantText { text, .. } | DisplayMessage::Thinking { text, .. } => {
                Some(text)
            }
            _ => None,
        }
    }

    fn start_call(&mut self, agent: &str, s: &ToolCallStart) {
        self.calls.insert(s.tool_call_id.clone(), self.out.len());
        self.out.push(DisplayMessage::ToolCall {
            agent_id: agent.to_owned(),
            tool_call_id: s.tool_call_id.clone(),
            tool_name: s.tool_name.clone(),
            args: String::new(),
            result: None,
            status: ToolCallStatus::Pending,
        });
    }

    fn record_result(&mut self, r: &ToolCallResultPayload) {
        if let Some(DisplayMessage::ToolCall { result, status, .. }) = self.call(&r.tool_call_id) {
            *result = Some(r.output.clone());
            *status = if r.is_error {
                ToolCallStatus::Error
            } else {
                ToolCallStatus::Success
            };
        }
    }

    fn start_subagent(&mut self, s: &SubagentStarted) {
        self.subagents
            .insert(s.subagent_agent_id.clone(), self.out.len());
        self.out.push(DisplayMessage::Subagent {
            agent_id: s.subagent_agent_id.clone(),
            subagent_name: s.subagent_name.clone(),
            result: None,
            status: ToolCallStatus::Pending,
        });
    }

    fn end_subagent(&mut self, s: &SubagentCompleted) {
        let index = self.subagents.get(&s.subagent_agent_id).copied();
        if let Some(DisplayMessage::Subagent { result, status, .. }) =
            index.and_then(|i| self.out.get_mut(i))
        {
            result.clone_from(&s.result);
            *status = s.status;
        }
    }

    /// The open block of this agent and kind, opened at the end when there is none.
    fn block(&mut self, agent: &str, kind: ContentKind) -> usize {
        let key = (agent.to_owned(), kind);
        if let Some(&index) = self.open.get(&key) {
            return index;
        }
        let index = self.out.len();
        self.out.push(match kind {
            ContentKind::Text => DisplayMessage::AssistantText {
                agent_id: agent.to_owned(),
                text: String::new(),
            },
            ContentKind::Thinking => DisplayMessage::Thinking {
                agent_id: agent.to_owned(),
                text: String::new(),
            },
        });
        self.open.insert(key, index);
        index
    }

    fn call(&mut self, tool_call_id: &str) -> Option<&mut DisplayMessage> {
        let index = *self.calls.get(tool_call_id)?;
        self.out.get_mut(index)
    }
}

#[cfg(test)]
mod tests {
    use ports::*;

    use super::*;

    fn ev(agent: &str, payload: EventPayload) -> EventEnvelope {
        EventEnvelope {
            event_id: 1,
            session_id: "s".into(),
            agent_id: agent.into(),
            timestamp: now(),
            payload,
        }
    }

    fn delta(kind: ContentKind, d: &str) -> EventPayload {
        EventPayload::ContentDelta(ContentDelta {
            kind,
            delta: d.into(),
        })
    }

    fn shell_call_start(id: &str) -> EventPayload {
        EventPayload::ToolCallStart(ToolCallStart {
            tool_call_id: id.into(),
            tool_name: "shell".into(),
        })
    }

    fn args_delta(id: &str, d: &str) -> EventPayload {
        EventPayload::ToolCallArgsDelta(ToolCallArgsDelta {
            tool_call_id: id.into(),
            delta: d.into(),
        })
    }

    fn call_end(id: &str, status: ToolCallStatus) -> EventPayload {
        EventPayload::ToolCallEnd(ToolCallEnd {
            tool_call_id: id.into(),
            status,
        })
    }

    fn done(kind: ContentKind, t: &str) -> EventPayload {
        EventPayload::ContentDone(ContentDone {
            kind,
            text: t.into(),
        })
    }

    #[test]
    fn thinking_text_and_a_tool_call_are_transcribed_in_order() {
        let events = vec![
            ev(
                MAIN_AGENT,
                EventPayload::MessageStart(MessageStart {
                    message_id: "m1".into(),
                }),
            ),
            ev(MAIN_AGENT, delta(ContentKind::Thinking, "hm")),
            ev(MAIN_AGENT, done(ContentKind::Thinking, "hmm")),
            ev(MAIN_AGENT, delta(ContentKind::Text, "Let me ")),
            ev(MAIN_AGENT, delta(ContentKind::Text, "look.")),
            ev(MAIN_AGENT, done(ContentKind::Text, "Let me look.")),
            ev(MAIN_AGENT, shell_call_start("c1")),
            ev(MAIN_AGENT, args_delta("c1", "{\"command\":")),
            ev(MAIN_AGENT, args_delta("c1", "\"ls\"}")),
            ev(
                MAIN_AGENT,
                EventPayload::MessageEnd(MessageEnd {
                    message_id: "m1".into(),
                }),
            ),
            ev(
                MAIN_AGENT,
                EventPayload::ToolCallResult(ToolCallResultPayload {
                    tool_call_id: "c1".into(),
                    tool_name: "shell".into(),
                    output: "a.txt".into(),
                    is_error: false,
                }),
            ),
            ev(MAIN_AGENT, call_end("c1", ToolCallStatus::Success)),
            ev(
                MAIN_AGENT,
                EventPayload::SteeringInjected(SteeringInjected {
                    message_id: None,
                    text: "also b".into(),
                }),
            ),
            ev(MAIN_AGENT, delta(ContentKind::Text, "Done.")),
            ev(MAIN_AGENT, done(ContentKind::Text, "Done.")),
        ];
        let out = display_messages(Some("list files"), &events, None);
        assert_eq!(
            out,
            vec![
                DisplayMessage::User {
                    text: "list files".into()
                },
                DisplayMessage::Thinking {
                    agent_id: "main".into(),
                    text: "hmm".into()
                },
                DisplayMessage::AssistantText {
                    agent_id: "main".into(),
                    text: "Let me look.".into()
                },
                DisplayMessage::ToolCall {
                    agent_id: "main".into(),
                    tool_call_id: "c1".into(),
                    tool_name: "shell".into(),
                    args: "{\"command\":\"ls\"}".into(),
                    result: Some("a.txt".into()),
                    status: ToolCallStatus::Success,
                },
                DisplayMessage::User {
                    text: "also b".into()
                },
                DisplayMessage::AssistantText {
                    agent_id: "main".into(),
                    text: "Done.".into()
                },
            ]
        );
    }

    #[test]
    fn an_interrupted_block_keeps_its_deltas_and_a_failure_is_last() {
        let events = vec![
            ev(MAIN_AGENT, delta(ContentKind::Text, "partial ")),
            ev(MAIN_AGENT, delta(ContentKind::Text, "answer")),
            ev(MAIN_AGENT, shell_call_start("c1")),
            ev(MAIN_AGENT, call_end("c1", ToolCallStatus::Cancelled)),
        ];
        let out = display_messages(None, &events, Some(("model_error", "boom")));
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0],
            DisplayMessage::AssistantText {
                agent_id: "main".into(),
                text: "partial answer".into()
            }
        );
        assert!(matches!(
            &out[1],
            DisplayMessage::ToolCall {
                status: ToolCallStatus::Cancelled,
                result: None,
                ..
            }
        ));
        assert_eq!(
            out[2],
            DisplayMessage::Error {
                code: "model_error".into(),
                message: "boom".into()
            }
        );
    }

    #[test]
    fn subagent_blocks_and_their_content_stay_apart_from_the_parent() {
        let events = vec![
            ev(
                MAIN_AGENT,
                EventPayload::SubagentStarted(SubagentStarted {
                    subagent_name: "r".into(),
                    subagent_agent_id: "r-1".into(),
                }),
            ),
            ev("r-1", delta(ContentKind::Text, "sub says")),
            ev(MAIN_AGENT, delta(ContentKind::Text, "main says")),
            ev("r-1", done(ContentKind::Text, "sub says")),
            ev(
                MAIN_AGENT,
                EventPayload::SubagentCompleted(SubagentCompleted {
                    subagent_name: "r".into(),
                    subagent_agent_id: "r-1".into(),
                    status: ToolCallStatus::Success,
                    result: Some("ok".into()),
                }),
            ),
        ];
        let out = display_messages(None, &events, None);
        assert_eq!(
            out,
            vec![
                DisplayMessage::Subagent {
                    agent_id: "r-1".into(),
                    subagent_name: "r".into(),
                    result: Some("ok".into()),
                    status: ToolCallStatus::Success
                },
                DisplayMessage::AssistantText {
                    agent_id: "r-1".into(),
                    text: "sub says".into()
                },
                DisplayMessage::AssistantText {
                    agent_id: "main".into(),
                    text: "main says".into()
                },
            ]
        );
    }
}
