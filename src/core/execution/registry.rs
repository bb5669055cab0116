//! The session registry (spec 01): the in-process authority on "is this session running?",
//! holding the live handles callers reach a run through (interrupt, steer, events). It
//! starts empty on every boot.
//!
//! Besides running sessions it keeps the logs of finished runs until their events have
//! reached the bus, so a caller attaching in that window is served from memory instead of
//! finding a stream that is not complete yet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ports::{ConversationId, SessionId, SessionType, StreamKey, Transport, Workspace};
use tokio::sync::Notify;

use super::run_log::RunLog;
use crate::core::run::{RunControl, Steer, SteerRefused};

/// A running session as callers see it.
pub struct RunHandle {
    pub session_id: SessionId,
    pub conversation_id: ConversationId,
    pub session_type: SessionType,
    pub transport: Transport,
    pub stream_key: StreamKey,
    pub control: RunControl,
    pub log: Arc<RunLog>,
    /// The run's workspace, where a steer's attachments are saved.
    pub workspace: Arc<dyn Workspace>,
    /// Steering message ids already queued, so a client retrying a steer queues it once.
    steer_ids: Mutex<HashSet<String>>,
}

/// What a steer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteerOutcome {
    Queued,
    /// The same message id was queued before; nothing new was queued.
    Duplicate,
}

impl RunHandle {
    pub fn new(
        session_id: SessionId,
        conversation_id: ConversationId,
        session_type: SessionType,
        transport: Transport,
        control: RunControl,
        log: Arc<RunLog>,
        workspace: Arc<dyn Workspace>,
    ) -> Self {
        Self {
            stream_key: StreamKey::for_session(&session_id),
            session_id,
            conversation_id,
            session_type,
            transport,
            control,
            log,
            workspace,
            steer_ids: Mutex::new(HashSet::new()),
        }
    }

    /// Whether a steer with this message id was queued already, so a retried steer is
    /// answered without saving its attachments again.
    pub fn steered(&self, message_id: &str) -> bool {
        self.steer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(message_id)
    }

    /// Queues a steering message, once per message id.
    ///
    /// # Errors
    /// [`SteerRefused`] when the run has decided to finish or its queue is full.
    pub fn steer(&self, steer: Steer) -> Result<SteerOutcome, SteerRefused> {
        let mut seen = self
            .steer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&steer.message_id) {
            return Ok(SteerOutcome::Duplicate);
        }
        let id = steer.message_id.clone();
        self.control.steering().push(steer)?;
        seen.insert(id);
        Ok(SteerOutcome::Queued)
    }
}

#[derive(Default)]
struct Maps {
    running: HashMap<SessionId, Arc<RunHandle>>,
    /// Logs of finished runs whose events are still on their way to the bus.
    flushing: HashMap<SessionId, Arc<RunLog>>,
}

/// Running sessions by id.
#[derive(Default)]
pub struct Registry {
    maps: Mutex<Maps>,
    /// Signalled whenever a running session leaves.
    left: Notify,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each critical section is a single map operation, so a poisoned lock is still valid.
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn insert(&self, handle: Arc<RunHandle>) {
        let mut maps = self.lock();
        maps.flushing
            .insert(handle.session_id.clone(), handle.log.clone());
        maps.running.insert(handle.session_id.clone(), handle);
    }

    /// The session stops counting as running; its log stays reachable until
    /// [`Self::flushed`].
    pub fn finish(&self, session_id: &SessionId) {
        self.lock().running.remove(session_id);
        self.left.notify_waiters();
    }

    /// The run's events reached the bus (or the forwarder gave up): drop its log.
    pub fn flushed(&self, session_id: &SessionId) {
        self.lock().flushing.remove(session_id);
    }

    pub fn get(&self, session_id: &SessionId) -> Option<Arc<RunHandle>> {
        self.lock().running.get(session_id).cloned()
    }

    /// The log of a running session, or of a finished one not yet forwarded to the bus.
    pub fn log(&self, session_id: &SessionId) -> Option<Arc<RunLog>> {
        self.lock().flushing.get(session_id).cloned()
    }

    /// The running `agent` session of a conversation (there is at most one).
    pub fn agent_run_of(&self, conversation_id: &ConversationId) -> Option<Arc<RunHandle>> {
        self.lock()
            .running
            .values()
            .find(|h| h.conversation_id == *conversation_id && h.session_type == SessionType::Agent)
            .cloned()
    }

    /// Every running session of a conversation, agents and async subagents.
    pub fn runs_of(&self, conversation_id: &ConversationId) -> Vec<Arc<RunHandle>> {
        let mut runs: Vec<_> = self
            .lock()
            .running
            .values()
            .filter(|h| h.conversation_id == *conversation_id)
            .cloned()
            .collect();
        runs.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        runs
    }

    /// Every running session.
    pub fn all(&self) -> Vec<Arc<RunHandle>> {
        self.lock().running.values().cloned().collect()
    }

    fn running_count(&self) -> usize {
        self.lock().running.len()
    }

    /// Resolves once no session is running.
    pub async fn wait_idle(&self) {
        loop {
            let left = self.left.notified();
            if self.running_count() == 0 {
                return;
            }
            left.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: &str, conv: &str, ty: SessionType) -> Arc<RunHandle> {
        Arc::new(RunHandle::new(
            id.into(),
            conv.into(),
            ty,
            Transport::Sse,
            RunControl::new(),
            RunLog::new(id),
            Arc::new(ports::mocks::MockWorkspace::new()),
        ))
    }

    #[test]
    fn finished_runs_leave_but_their_logs_stay_until_flushed() {
        let r = Registry::new();
        r.insert(handle("a", "c", SessionType::Agent));
        r.insert(handle("b", "c", SessionType::AsyncSubagent));
        assert_eq!(r.agent_run_of(&"c".into()).unwrap().session_id, "a");
        assert_eq!(r.runs_of(&"c".into()).len(), 2);
        r.finish(&"a".into());
        assert!(r.get(&"a".into()).is_none());
        assert!(
            r.agent_run_of(&"c".into()).is_none(),
            "async subagents do not count"
        );
        assert!(r.log(&"a".into()).is_some());
        r.flushed(&"a".into());
        assert!(r.log(&"a".into()).is_none());
    }

    #[test]
    fn a_steer_is_queued_once_per_message_id_and_refused_after_close() {
        let h = handle("a", "c", SessionType::Agent);
        let steer = |id: &str| Steer {
            message_id: id.into(),
            parts: vec![ports::UserPart::Text { text: "go".into() }],
            text: "go".into(),
        };
        assert_eq!(h.steer(steer("m1")), Ok(SteerOutcome::Queued));
        assert_eq!(h.steer(steer("m1")), Ok(SteerOutcome::Duplicate));
        assert_eq!(h.steer(steer("m2")), Ok(SteerOutcome::Queued));
    }

    #[tokio::test]
    async fn wait_idle_resolves_when_the_last_run_leaves() {
        let r = Arc::new(Registry::new());
        r.insert(handle("a", "c", SessionType::Agent));
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.wait_idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        r.finish(&"a".into());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
