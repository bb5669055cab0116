//! Our events as AG-UI events (the protocol CopilotKit and other agent UIs speak). AG-UI
//! is stricter about nesting than our stream: a text message, a reasoning message and a
//! tool call each open and close explicitly, nothing overlaps, and everything is closed
//! before the run finishes. The encoder keeps what is open and closes it at the right
//! moment; our events AG-UI has no type for go out as `CUSTOM` (named by their
//! `event_type`, the whole envelope as value), as do a subagent's own events.

use ports::{ContentKind, EventEnvelope, EventPayload, MAIN_AGENT, RunCompleted};
use serde_json::{Value, json};

/// One run's encoder.
#[derive(Debug, Default)]
pub struct AgUiEncoder {
    /// `threadId` / `runId` given by the caller (an AG-UI client mints its own); otherwise
    /// the conversation and the session.
    thread_id: Option<String>,
    run_id: Option<String>,
    /// Ours, told in `RUN_FINISHED`'s result so a client can find the run in our API.
    conversation_id: Option<String>,
    started: bool,
    /// The model message the next text or reasoning belongs to.
    message_id: String,
    text_open: bool,
    reasoning_open: bool,
    /// Tool calls started and not yet ended.
    tools_open: Vec<String>,
}

impl AgUiEncoder {
    /// An encoder naming the thread and run as the client did.
    pub fn for_client(thread_id: String, run_id: String) -> Self {
        Self {
            thread_id: Some(thread_id),
            run_id: Some(run_id),
            ..Self::default()
        }
    }

    /// The AG-UI events of one of ours, in order.
    pub fn encode(&mut self, event: &EventEnvelope) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.started {
            self.start(event, &mut out);
        }
        if event.agent_id != MAIN_AGENT {
            out.push(custom(event));
            return out;
        }
        match &event.payload {
            EventPayload::RunStarted(started) => {
                self.conversation_id = Some(started.conversation_id.to_string());
            }
            EventPayload::MessageStart(m) => self.message_id.clone_from(&m.message_id),
            EventPayload::ContentDelta(d) => self.content(d.kind, &d.delta, &mut out),
            EventPayload::ContentDone(_) => self.close_content(&mut out),
            EventPayload::ToolCallStart(t) => {
                self.close_content(&mut out);
                self.tools_open.push(t.tool_call_id.clone());
                out.push(
                    json!({"type": "TOOL_CALL_START", "toolCallId": t.tool_call_id,
                                "toolCallName": t.tool_name, "parentMessageId": self.message_id}),
                );
            }
            EventPayload::ToolCallArgsDelta(a) if a.delta.is_empty() => {}
            EventPayload::ToolCallArgsDelta(a) => {
                out.push(
                    json!({"type": "TOOL_CALL_ARGS", "toolCallId": a.tool_call_id,
                                "delta": a.delta}),
                );
            }
            EventPayload::MessageEnd(_) => self.close_all(&mut out),
            EventPayload::ToolCallResult(r) => {
                self.close_tool(&r.tool_call_id, &mut out);
                out.push(json!({"type": "TOOL_CALL_RESULT",
                                "messageId": format!("{}-result", r.tool_call_id),
                                "toolCallId": r.tool_call_id, "content": r.output, "role": "tool"}));
            }
            EventPayload::ToolCallEnd(_) => {}
            EventPayload::RunCompleted(done) => self.finish(event, done, &mut out),
            EventPayload::RunFailed(failed) => {
                self.close_all(&mut out);
                out.push(json!({"type": "RUN_ERROR", "message": failed.message,
                                "code": failed.code}));
            }
            _ => out.push(custom(event)),
        }
        out
    }

    /// Text, or thinking, of the main agent's current message.
    fn content(&mut self, kind: ContentKind, delta: &str, out: &mut Vec<Value>) {
        if delta.is_empty() {
            return;
        }
        if kind == ContentKind::Text {
            self.close_reasoning(out);
            if !self.text_open {
                self.text_open = true;
                out.push(
                    json!({"type": "TEXT_MESSAGE_START", "messageId": self.message_id,
                                "role": "assistant"}),
                );
            }
            out.push(
                json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": self.message_id,
                            "delta": delta}),
            );
            return;
        }
        self.close_text(out);
        let id = self.reasoning_id();
        if !self.reasoning_open {
            self.reasoning_open = true;
            out.push(json!({"type": "REASONING_START", "messageId": id}));
            out.push(json!({"type": "REASONING_MESSAGE_START", "messageId": id,
                            "role": "reasoning"}));
        }
        out.push(json!({"type": "REASONING_MESSAGE_CONTENT", "messageId": id, "delta": delta}));
    }

    /// `RUN_FINISHED`, its result naming our session and conversation.
    fn finish(&mut self, event: &EventEnvelope, done: &RunCompleted, out: &mut Vec<Value>) {
        self.close_all(out);
        let mut result = serde_json::to_value(done).unwrap_or(Value::Null);
        result["session_id"] = json!(event.session_id);
        result["conversation_id"] = json!(self.conversation_id);
        out.push(
            json!({"type": "RUN_FINISHED", "threadId": self.thread(event),
                        "runId": self.run(event), "result": result}),
        );
    }

    /// `RUN_STARTED` comes first, even for a stream attached after our `run_started`.
    fn start(&mut self, event: &EventEnvelope, out: &mut Vec<Value>) {
        self.started = true;
        if let EventPayload::RunStarted(started) = &event.payload {
            self.conversation_id = Some(started.conversation_id.to_string());
            if self.thread_id.is_none() {
                self.thread_id.clone_from(&self.conversation_id);
            }
        }
        out.push(
            json!({"type": "RUN_STARTED", "threadId": self.thread(event),
                        "runId": self.run(event)}),
        );
    }

    fn thread(&self, event: &EventEnvelope) -> String {
        self.thread_id
            .clone()
            .unwrap_or_else(|| event.session_id.clone())
    }

    fn run(&self, event: &EventEnvelope) -> String {
        self.run_id
            .clone()
            .unwrap_or_else(|| event.session_id.clone())
    }

    fn reasoning_id(&self) -> String {
        format!("{}-reasoning", self.message_id)
    }

    fn close_text(&mut self, out: &mut Vec<Value>) {
        if std::mem::take(&mut self.text_open) {
            out.push(json!({"type": "TEXT_MESSAGE_END", "messageId": self.message_id}));
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<Value>) {
        if std::mem::take(&mut self.reasoning_open) {
            let id = self.reasoning_id();
            out.push(json!({"type": "REASONING_MESSAGE_END", "messageId": id}));
            out.push(json!({"type": "REASONING_END", "messageId": id}));
        }
    }

    fn close_content(&mut self, out: &mut Vec<Value>) {
        self.close_text(out);
        self.close_reasoning(out);
    }

    fn close_tool(&mut self, id: &str, out: &mut Vec<Value>) {
        if let Some(at) = self.tools_open.iter().position(|t| t == id) {
            self.tools_open.remove(at);
            out.push(json!({"type": "TOOL_CALL_END", "toolCallId": id}));
        }
    }

    fn close_all(&mut self, out: &mut Vec<Value>) {
        self.close_content(out);
        for id in std::mem::take(&mut self.tools_open) {
            out.push(json!({"type": "TOOL_CALL_END", "toolCallId": id}));
        }
    }
}

/// An event AG-UI has no type for.
fn custom(event: &EventEnvelope) -> Value {
    json!({"type": "CUSTOM", "name": event.payload.event_type(),
           "value": serde_json::to_value(event).unwrap_or(Value::Null)})
}

#[cfg(test)]
mod tests {
    use ports::*;

    use super::*;

    fn envelope(agent: &str, payload: EventPayload) -> EventEnvelope {
        EventEnvelope {
            event_id: 1,
            session_id: "s1".into(),
            agent_id: agent.into(),
            timestamp: now(),
            payload,
        }
    }

    fn types(encoder: &mut AgUiEncoder, events: Vec<EventEnvelope>) -> Vec<String> {
        events
            .iter()
            .flat_map(|e| encoder.encode(e))
            .map(|v| v["type"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_run_with_thinking_text_and_a_tool_call_nests_as_ag_ui_wants() {
        let delta = |kind, text: &str| {
            envelope(
                MAIN_AGENT,
                EventPayload::ContentDelta(ContentDelta {
                    kind,
                    delta: text.into(),
                }),
            )
        };
        let mut encoder = AgUiEncoder::for_client("t".into(), "r".into());
        let got = types(
            &mut encoder,
            vec![
                envelope(
                    MAIN_AGENT,
                    EventPayload::MessageStart(MessageStart {
                        message_id: "m1".into(),
                    }),
                ),
                delta(ContentKind::Thinking, "hmm"),
                delta(ContentKind::Text, "let me look"),
                envelope(
                    MAIN_AGENT,
                    EventPayload::ToolCallStart(ToolCallStart {
                        tool_call_id: "c1".into(),
                        tool_name: "ls".into(),
                    }),
                ),
                envelope(
                    MAIN_AGENT,
                    EventPayload::ToolCallArgsDelta(ToolCallArgsDelta {
                        tool_call_id: "c1".into(),
                        delta: "{}".into(),
                    }),
                ),
                envelope(
                    MAIN_AGENT,
                    EventPayload::MessageEnd(MessageEnd {
                        message_id: "m1".into(),
                    }),
                ),
                envelope(
                    MAIN_AGENT,
                    EventPayload::ToolCallResult(ToolCallResultPayload {
                        tool_call_id: "c1".into(),
                        tool_name: "ls".into(),
                        output: "a.txt".into(),
                        is_error: false,
                    }),
                ),
                envelope(
                    "helper",
                    EventPayload::Warning(Warning {
                        code: "x".into(),
                        message: "y".into(),
                    }),
                ),
                envelope(
                    MAIN_AGENT,
                    EventPayload::RunFailed(RunFailed {
                        code: "model_error".into(),
                        message: "boom".into(),
                    }),
                ),
            ],
        );
        assert_eq!(
            got,
            [
                "RUN_STARTED",
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "CUSTOM",
                "RUN_ERROR",
            ]
        );
    }
}
