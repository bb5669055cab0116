//! The notifications a run publishes: when it starts, when it ends (and what that ends in:
//! waiting for approval, a new latest session of its conversation), when an async
//! subagent's outcome reaches the mailbox.

use ports::{NewNotification, NotificationKind, SessionRecord, SessionStatus, SessionType, now};

fn about(record: &SessionRecord, kind: NotificationKind) -> NewNotification {
    NewNotification {
        kind,
        at: now(),
        conversation_id: record.conversation_id.clone(),
        session_id: Some(record.session_id.clone()),
        session_type: Some(record.session_type()),
        status: None,
        subagent: None,
    }
}

/// `session_started`.
pub(super) fn started(record: &SessionRecord) -> NewNotification {
    about(record, NotificationKind::SessionStarted)
}

/// `session_finished` with the final status; `awaiting_approval` when the session waits
/// for its caller; `conversation_updated` when an agent session committed or paused (its
/// conversation has a new latest session).
pub(super) fn finished(record: &SessionRecord, status: SessionStatus) -> Vec<NewNotification> {
    let with_status = |kind| NewNotification {
        status: Some(status),
        ..about(record, kind)
    };
    let mut notes = vec![with_status(NotificationKind::SessionFinished)];
    if status == SessionStatus::AwaitingToolResults {
        notes.push(with_status(NotificationKind::AwaitingApproval));
    }
    if record.session_type() == SessionType::Agent && status != SessionStatus::Failed {
        notes.push(with_status(NotificationKind::ConversationUpdated));
    }
    notes
}

/// `conversation_updated` for a change of the conversation itself (its title, metadata,
/// default preset or status), not of its sessions.
pub(super) fn edited(conversation_id: ports::ConversationId) -> NewNotification {
    NewNotification {
        kind: NotificationKind::ConversationUpdated,
        at: now(),
        conversation_id,
        session_id: None,
        session_type: None,
        status: None,
        subagent: None,
    }
}

/// `mailbox_updated`: the outcome of the async subagent `name` is in the mailbox.
pub(super) fn mailbox(record: &SessionRecord, name: &str) -> NewNotification {
    NewNotification {
        subagent: Some(name.to_owned()),
        ..about(record, NotificationKind::MailboxUpdated)
    }
}
