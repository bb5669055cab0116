//! Where notifications go besides the log and its live readers (webhooks).

use crate::Notification;

/// Takes each notification once it is in the log. `deliver` MUST return at once: the
/// delivery itself (HTTP, retries) happens in the sink's own tasks, so a slow receiver
/// never holds up the service.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait NotificationSink: Send + Sync {
    fn deliver(&self, notification: &Notification);
}
