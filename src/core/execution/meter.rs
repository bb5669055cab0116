//! Tool-call metrics read from a run's events as they are forwarded: a call's time runs from
//! the end of the model message that asked for it (when the agent starts its tools) to its
//! result, by the events' own timestamps, so the forwarder's pace does not skew it.

use std::collections::HashMap;
use std::sync::Arc;

use ports::{EventEnvelope, EventPayload, Metrics, Timestamp};

/// One run's view for its metrics.
pub(super) struct RunMeter {
    metrics: Arc<dyn Metrics>,
    /// When each agent's (the main agent's, a subagent's) last model message ended.
    message_ends: HashMap<String, Timestamp>,
}

impl RunMeter {
    pub(super) fn new(metrics: Arc<dyn Metrics>) -> Self {
        Self {
            metrics,
            message_ends: HashMap::new(),
        }
    }

    /// Records the tool calls that ended in `events`.
    pub(super) fn observe(&mut self, events: &[Arc<EventEnvelope>]) {
        for event in events {
            match &event.payload {
                EventPayload::MessageEnd(_) => {
                    self.message_ends
                        .insert(event.agent_id.clone(), event.timestamp);
                }
                EventPayload::ToolCallResult(result) => {
                    let took = self
                        .message_ends
                        .get(&event.agent_id)
                        .and_then(|asked| (event.timestamp - *asked).to_std().ok())
                        .unwrap_or_default();
                    self.metrics.tool_call(&result.tool_name, took);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ports::mocks::MockMetrics;
    use ports::{MAIN_AGENT, MessageEnd, ToolCallResultPayload};

    use super::*;

    fn event(agent: &str, at_ms: i64, payload: EventPayload) -> Arc<EventEnvelope> {
        Arc::new(EventEnvelope {
            event_id: 1,
            session_id: "s".into(),
            agent_id: agent.into(),
            timestamp: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
            payload,
        })
    }

    fn result(tool: &str) -> EventPayload {
        EventPayload::ToolCallResult(ToolCallResultPayload {
            tool_call_id: "c".into(),
            tool_name: tool.into(),
            output: String::new(),
            is_error: false,
        })
    }

    #[test]
    fn a_call_is_timed_from_its_agents_message_end() {
        let mut metrics = MockMetrics::new();
        metrics
            .expect_tool_call()
            .withf(|tool, took| tool == "shell" && *took == Duration::from_millis(250))
            .times(1)
            .return_const(());
        metrics
            .expect_tool_call()
            .withf(|tool, took| tool == "view" && *took == Duration::from_millis(40))
            .times(1)
            .return_const(());
        let mut meter = RunMeter::new(Arc::new(metrics));
        let end = EventPayload::MessageEnd(MessageEnd {
            message_id: "m".into(),
        });
        meter.observe(&[
            event(MAIN_AGENT, 1_000, end.clone()),
            event("sub", 1_100, end),
        ]);
        meter.observe(&[
            event("sub", 1_140, result("view")),
            event(MAIN_AGENT, 1_250, result("shell")),
        ]);
    }
}
