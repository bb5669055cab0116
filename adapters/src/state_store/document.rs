//! The stored form of `state.json`: the agent's context state with its histories named by
//! segment references (spec 01). Documents of earlier versions, with the history inline,
//! still load.

use std::collections::BTreeMap;

use ports::{ContextState, ModelMessage};
use serde::{Deserialize, Serialize};

use super::segments::SegmentRef;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct StoredState {
    /// Written without `subagent_histories`: those are in `subagent_segments`.
    #[serde(default)]
    pub context_state: ContextState,
    /// The message history's segments, in order; `None` in documents with it inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<SegmentRef>>,
    /// Each sync subagent's history, by subagent name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subagent_segments: BTreeMap<String, Vec<SegmentRef>>,
    /// The history inline, as earlier versions stored it: read, never written.
    #[serde(default, skip_serializing)]
    pub message_history: Vec<ModelMessage>,
}

impl StoredState {
    /// Every segment the document names.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentRef> {
        self.history
            .iter()
            .flatten()
            .chain(self.subagent_segments.values().flatten())
    }
}

/// The context state without its subagent histories, copied field by field so the
/// histories are never cloned (a field added to `ContextState` must be placed here).
pub(super) fn without_histories(context: &ContextState) -> ContextState {
    let ContextState {
        tasks,
        subagent_histories: _,
        async_subagents,
        usage,
        handoff_notes,
        pending_tool_calls,
    } = context;
    ContextState {
        tasks: tasks.clone(),
        subagent_histories: BTreeMap::new(),
        async_subagents: async_subagents.clone(),
        usage: *usage,
        handoff_notes: handoff_notes.clone(),
        pending_tool_calls: pending_tool_calls.clone(),
    }
}
