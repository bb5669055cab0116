//! `GET /api/notifications`: what happens to sessions and conversations, as server-sent
//! events. A new client gets what happens from then on; one reconnecting with
//! `Last-Event-ID` first gets what it missed from the persisted log (bounded: the newest
//! 10,000), then the live ones. A client too slow for the live feed is cut off and resumes
//! from the log the same way.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, stream};
use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Query},
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use tokio::sync::broadcast;

use super::dto::events::{NotificationKind, SessionStatus, SessionType};
use super::{ApiState, Tag, auth::Auth, error::ErrorResponse, runs};

/// One notification (the `data:` of each frame; `id:` is its id, `event:` its kind).
/// `status` is set for `session_finished`, `awaiting_approval` and `conversation_updated`:
/// the session's final status.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Notification {
    /// Orders notifications; resume after it with `Last-Event-ID`.
    pub id: u64,
    pub kind: NotificationKind,
    pub at: DateTime<Utc>,
    pub conversation_id: String,
    pub session_id: Option<String>,
    pub session_type: Option<SessionType>,
    pub status: Option<SessionStatus>,
    /// `mailbox_updated`: the async subagent whose outcome arrived.
    pub subagent: Option<String>,
}

impl From<&ports::Notification> for Notification {
    fn from(n: &ports::Notification) -> Self {
        let b = &n.body;
        Self {
            id: n.id,
            kind: b.kind.into(),
            at: b.at,
            conversation_id: b.conversation_id.as_str().to_owned(),
            session_id: b.session_id.as_ref().map(|s| s.as_str().to_owned()),
            session_type: b.session_type.map(Into::into),
            status: b.status.map(Into::into),
            subagent: b.subagent.clone(),
        }
    }
}

/// The notification stream's body.
pub struct NotificationStream(stream::BoxStream<'static, Arc<ports::Notification>>);

impl std::fmt::Debug for NotificationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationStream")
    }
}

impl Payload for NotificationStream {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(
                "Server-sent events: each `data:` is one JSON Notification; `event:` = kind, \
                 `id:` = id",
            ),
            format: Some("event-stream"),
            items: Some(Box::new(Notification::schema_ref())),
            ..MetaSchema::ANY
        }))
    }

    fn register(registry: &mut Registry) {
        Notification::register(registry);
    }
}

impl IntoResponse for NotificationStream {
    fn into_response(self) -> Response {
        let frames = self.0.map(|n| {
            let view = Notification::from(&*n);
            Event::message(view.to_json_string())
                .id(n.id.to_string())
                .event_type(n.body.kind.as_str())
        });
        let mut resp = SSE::new(frames)
            .keep_alive(runs::KEEP_ALIVE)
            .into_response();
        resp.headers_mut().insert(
            "x-accel-buffering",
            poem::http::HeaderValue::from_static("no"),
        );
        resp
    }
}

/// Answer of `notifications_stream`.
#[derive(ApiResponse, Debug)]
pub enum NotificationsResponse {
    /// Notifications as they happen (after the missed ones when resuming).
    #[oai(status = 200)]
    Events(NotificationStream),
}

pub struct NotificationsApi;

#[OpenApi(tag = "Tag::Notifications")]
impl NotificationsApi {
    /// Follow what happens to sessions and conversations (`session_started`,
    /// `session_finished`, `awaiting_approval`, `mailbox_updated`, `conversation_updated`).
    /// With `Last-Event-ID` (header, as a browser's `EventSource` sends it on reconnect)
    /// or `last_event_id` (query), the notifications after it come first, from a log of
    /// the newest 10,000.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "notifications_stream"
    )]
    async fn stream(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        #[oai(
            name = "Last-Event-ID",
            validator(minimum(value = "0"), maximum(value = "9007199254740991"))
        )]
        last_event_id_header: Header<Option<u64>>,
        #[oai(
            name = "last_event_id",
            validator(minimum(value = "0"), maximum(value = "9007199254740991"))
        )]
        last_event_id: Query<Option<u64>>,
    ) -> Result<NotificationsResponse, ErrorResponse> {
        // Subscribed before the log is read: nothing falls between the two.
        let live = state.notifier.subscribe();
        let resume = last_event_id_header.0.or(last_event_id.0);
        let missed = match resume {
            Some(after) => state.notifier.missed(after).await?,
            None => Vec::new(),
        };
        let seen = missed.last().map(|n| n.id).or(resume).unwrap_or(0);
        let stream = stream::iter(missed.into_iter().map(Arc::new)).chain(live_after(live, seen));
        Ok(NotificationsResponse::Events(NotificationStream(
            stream.boxed(),
        )))
    }
}

/// The live notifications with ids above `seen`; ends when the reader fell behind the
/// live buffer (it resumes from the log) or the service stops.
fn live_after(
    live: broadcast::Receiver<Arc<ports::Notification>>,
    seen: u64,
) -> impl Stream<Item = Arc<ports::Notification>> + Send {
    stream::unfold((live, seen), |(mut live, seen)| async move {
        loop {
            match live.recv().await {
                Ok(n) if n.id > seen => {
                    let id = n.id;
                    return Some((n, (live, id)));
                }
                Ok(_) => {}
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => {
                    return None;
                }
            }
        }
    })
}
