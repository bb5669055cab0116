//! Notifications (spec: `GET /api/notifications`, webhooks): what happened to sessions and
//! conversations, numbered by a persisted, bounded log. Publishing never waits: runs hand
//! a notification to one writer task, which numbers it in the log, then gives it to live
//! readers and to the sinks (webhooks). One writer keeps the ids in the order readers see.

use std::sync::Arc;

use ports::{NewNotification, Notification, NotificationRepo, NotificationSink, StorageError};
use tokio::sync::{broadcast, mpsc};

/// Notifications kept in the log for clients that reconnect.
pub const KEEP: u64 = 10_000;

/// Notifications waiting for the writer; beyond it new ones are dropped (and logged)
/// rather than slow a run.
const QUEUE: usize = 4096;

/// Live notifications buffered per reader; a reader further behind is cut off and
/// reconnects from the log with its last id.
const LIVE_BUFFER: usize = 1024;

/// Most notifications replayed to a reconnecting client at once.
pub const MAX_REPLAY: u32 = 1000;

/// The notifier: publish from anywhere, read live or from the log.
pub struct Notifier {
    queue: Option<mpsc::Sender<NewNotification>>,
    live: broadcast::Sender<Arc<Notification>>,
    log: Option<Arc<dyn NotificationRepo>>,
}

impl Notifier {
    /// Starts the writer task over `log`, handing each notification to `sinks` too.
    pub fn start(
        log: Arc<dyn NotificationRepo>,
        sinks: Vec<Arc<dyn NotificationSink>>,
    ) -> Arc<Self> {
        let (queue, pending) = mpsc::channel(QUEUE);
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        tokio::spawn(write(pending, log.clone(), live.clone(), sinks));
        Arc::new(Self {
            queue: Some(queue),
            live,
            log: Some(log),
        })
    }

    /// A notifier that drops everything (tests of other parts).
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            queue: None,
            live: broadcast::channel(1).0,
            log: None,
        })
    }

    /// Queues `n` for the log; never waits.
    pub fn publish(&self, n: NewNotification) {
        let Some(queue) = &self.queue else { return };
        if let Err(e) = queue.try_send(n) {
            tracing::warn!(error = %e, "notification dropped: the notification queue is full");
        }
    }

    /// Notifications from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.live.subscribe()
    }

    /// The logged notifications after `after` (what a reconnecting client missed).
    ///
    /// # Errors
    /// The log cannot be read.
    pub async fn missed(&self, after: u64) -> Result<Vec<Notification>, StorageError> {
        match &self.log {
            Some(log) => log.notifications_after(after, MAX_REPLAY).await,
            None => Ok(Vec::new()),
        }
    }
}

/// Most notifications numbered in one append.
const MAX_BATCH: usize = 256;

/// The writer: numbers the notifications that queued up meanwhile in one append, then
/// hands each on in order.
async fn write(
    mut pending: mpsc::Receiver<NewNotification>,
    log: Arc<dyn NotificationRepo>,
    live: broadcast::Sender<Arc<Notification>>,
    sinks: Vec<Arc<dyn NotificationSink>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids = match log.append_notifications(&batch, KEEP).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, count = batch.len(), "notifications not logged");
                batch.clear();
                continue;
            }
        };
        for (id, body) in ids.into_iter().zip(batch.drain(..)) {
            let notification = Arc::new(Notification { id, body });
            // No live reader is fine.
            let _ = live.send(notification.clone());
            for sink in &sinks {
                sink.deliver(&notification);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ports::mocks::{MockNotificationRepo, MockNotificationSink};
    use ports::{NotificationKind, now};

    use super::*;

    fn note(conversation: &str) -> NewNotification {
        NewNotification {
            kind: NotificationKind::ConversationUpdated,
            at: now(),
            conversation_id: conversation.into(),
            session_id: None,
            session_type: None,
            status: None,
            subagent: None,
        }
    }

    #[tokio::test]
    async fn published_notifications_are_logged_then_read_live_and_sunk_in_order() {
        let mut repo = MockNotificationRepo::new();
        let next = Mutex::new(0u64);
        repo.expect_append_notifications()
            .returning(move |batch, keep| {
                assert_eq!(keep, KEEP);
                let mut n = next.lock().unwrap();
                Ok(batch
                    .iter()
                    .map(|_| {
                        *n += 1;
                        *n
                    })
                    .collect())
            });
        let sunk = Arc::new(Mutex::new(Vec::new()));
        let mut sink = MockNotificationSink::new();
        {
            let sunk = sunk.clone();
            sink.expect_deliver()
                .returning(move |n| sunk.lock().unwrap().push(n.id));
        }
        let notifier = Notifier::start(Arc::new(repo), vec![Arc::new(sink)]);
        let mut live = notifier.subscribe();
        notifier.publish(note("a"));
        notifier.publish(note("b"));
        let first = live.recv().await.unwrap();
        let second = live.recv().await.unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        assert_eq!(second.body.conversation_id.as_str(), "b");
        tokio::task::yield_now().await;
        assert_eq!(*sunk.lock().unwrap(), [1, 2]);
    }

    #[tokio::test]
    async fn notifications_queued_together_cost_one_append_and_a_failed_one_loses_only_its_batch() {
        let mut repo = MockNotificationRepo::new();
        let batches = Arc::new(Mutex::new(Vec::new()));
        {
            let batches = batches.clone();
            let mut calls = 0;
            repo.expect_append_notifications()
                .returning(move |batch, _| {
                    calls += 1;
                    let names: Vec<String> = batch
                        .iter()
                        .map(|n| n.conversation_id.as_str().to_owned())
                        .collect();
                    batches.lock().unwrap().push(names);
                    if calls == 1 {
                        return Err(StorageError::Unavailable("down".into()));
                    }
                    Ok((10..).take(batch.len()).collect())
                });
        }
        let notifier = Notifier::start(Arc::new(repo), Vec::new());
        let mut live = notifier.subscribe();
        // Queued before the writer runs (this runtime has one thread): one batch.
        for name in ["a", "b", "c"] {
            notifier.publish(note(name));
        }
        tokio::task::yield_now().await;
        notifier.publish(note("d"));
        notifier.publish(note("e"));
        let (d, e) = (live.recv().await.unwrap(), live.recv().await.unwrap());
        assert_eq!((d.id, e.id), (10, 11));
        assert_eq!(d.body.conversation_id.as_str(), "d");
        assert_eq!(
            *batches.lock().unwrap(),
            [vec!["a", "b", "c"], vec!["d", "e"]]
        );
    }
}
