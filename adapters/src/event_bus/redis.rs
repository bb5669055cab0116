//! Redis Streams event bus: one stream per session, shared by every replica.
//!
//! Entry ids are `{event_id}-0` with one field, `event`, holding the envelope JSON, so a
//! cursor maps straight onto XRANGE/XREAD ids. Appends run as one Lua script, which makes
//! the order check, the capped XADD and the TTL a single atomic round trip. Every redis
//! error becomes `EventBusError::Unavailable`; no redis type leaves this module.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bb8::{PooledConnection, RunError};
use ports::{EventBus, EventBusError, EventEnvelope, StreamKey};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult, Script};
use tokio::time::Instant;

use super::{BusSettings, MAX_WAIT};
use crate::boxed;

/// The one field of each entry (also spelled out in [`APPEND_BATCH`]).
const FIELD: &str = "event";
/// Both for opening a socket and for getting a pooled connection: short, so that calls and
/// health checks fail fast while Redis is down instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Replies to ordinary commands; redis' 500 ms default is tight for a loaded server.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections for ordinary commands. Each is multiplexed but checked out by one caller at
/// a time, and commands take well under a millisecond, so a few cover many callers.
const POOL_SIZE: u32 = 16;
/// Readers that may sit in XREAD BLOCK at once. When all are busy, further blocking reads
/// give up waiting early and return empty, so their callers poll again instead of failing.
const MAX_BLOCKING_READERS: u32 = 256;
/// Slack over the server-side BLOCK before we presume the connection dead.
const BLOCK_GRACE: Duration = Duration::from_secs(2);
/// A connection that answered this recently is handed out without a PING, so a busy
/// stream pays one round trip per call, while one idle across a Redis restart is tested.
const TRUST_RECENT: Duration = Duration::from_secs(1);
/// PEXPIRE rejects values that overflow the server clock, and by then the script's XADD
/// has already run, so longer TTLs are cut to a year.
const MAX_TTL_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// KEYS[1] stream; ARGV[1] first event id, ARGV[2] cap, ARGV[3] TTL in ms ('' unless the
/// batch ends the run), ARGV[4..] envelope JSONs with consecutive ids. Returns nil when
/// appended, else the stream's last id (0 when missing).
const APPEND_BATCH: &str = r"
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0'
if #top > 0 then
  last = string.match(top[1][1], '^%d+')
end
local first = tonumber(ARGV[1])
if tonumber(last) + 1 ~= first then
  return last
end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], string.format('%d-0', first + i - 4), 'event', ARGV[i])
end
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return false
";

/// Event streams in Redis (5.0+ for streams, 6.2+ for exclusive XRANGE starts).
///
/// Two pools share one client. Ordinary commands use multiplexed connections with a
/// response timeout. Blocking reads get connections of their own, with no response
/// timeout (redis' default would cut XREAD BLOCK short), because a connection parked in
/// XREAD BLOCK stalls everything pipelined behind it. They are pooled rather than opened
/// per call since a caught-up tail blocks after nearly every event, and a connect per
/// event would churn sockets. A read cancelled mid-block leaves its connection marked
/// broken, so the pool closes it instead of lending out a connection still waiting for
/// the old reply.
pub struct RedisBus {
    pool: bb8::Pool<Manager>,
    blocking: bb8::Pool<Manager>,
    last_error: Arc<Mutex<Option<String>>>,
    append_batch: Script,
    cap: usize,
    ttl_ms: u64,
}

/// The client of `url`; `rediss://` goes through rustls, whose process-wide provider redis
/// needs (the same aws-lc-rs provider the rest of the service uses).
fn client(url: &str, root_cert: Option<Vec<u8>>) -> Result<Client, EventBusError> {
    if url.starts_with("rediss://") {
        // Err only when a provider is installed already, which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    match root_cert {
        None => Client::open(url).map_err(unavailable),
        Some(root_cert) => Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )
        .map_err(unavailable),
    }
}

impl RedisBus {
    /// Checks `url` (`redis://[:password@]host[:port][/db]`) without connecting: the
    /// service starts while Redis is down, calls fail with `Unavailable` meanwhile, and the
    /// pools reconnect by themselves when it returns.
    ///
    /// # Errors
    /// `Unavailable` when the URL does not parse or no Tokio runtime is running (the pools
    /// spawn their maintenance tasks on it).
    pub fn new(url: &str, settings: BusSettings) -> Result<Self, EventBusError> {
        Self::with_root_cert(url, None, settings)
    }

    /// [`Self::new`] trusting the PEM certificates `root_cert` for a `rediss://` server
    /// (a self-signed or private CA), instead of the system's roots.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_root_cert(
        url: &str,
        root_cert: Option<Vec<u8>>,
        settings: BusSettings,
    ) -> Result<Self, EventBusError> {
        tokio::runtime::Handle::try_current().map_err(|e| EventBusError::Unavailable(boxed(e)))?;
        let client = client(url, root_cert)?;
        let last_error = Arc::new(Mutex::new(None));
        let pool = |response_timeout, max_size| {
            let manager = Manager {
                client: client.clone(),
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(response_timeout),
                last_error: Arc::clone(&last_error),
            };
            bb8::Pool::builder()
                .max_size(max_size)
                .connection_timeout(CONNECT_TIMEOUT)
                .build_unchecked(manager)
        };
        Ok(Self {
            pool: pool(Some(RESPONSE_TIMEOUT), POOL_SIZE),
            blocking: pool(None, MAX_BLOCKING_READERS),
            last_error: Arc::clone(&last_error),
            append_batch: Script::new(APPEND_BATCH),
            cap: settings.cap.max(1),
            ttl_ms: u64::try_from(settings.ttl.as_millis())
                .map_or(MAX_TTL_MS, |ms| ms.min(MAX_TTL_MS)),
        })
    }

    async fn conn<'a>(
        &self,
        pool: &'a bb8::Pool<Manager>,
    ) -> Result<PooledConnection<'a, Manager>, EventBusError> {
        pool.get().await.map_err(|e| self.pool_error(e))
    }

    fn pool_error(&self, e: RunError<RedisError>) -> EventBusError {
        match e {
            RunError::User(e) => unavailable(e),
            RunError::TimedOut => {
                // bb8 connects in the background and only reports a timeout; the manager
                // kept the cause.
                let cause = lock(&self.last_error)
                    .clone()
                    .unwrap_or_else(|| "all connections busy".into());
                EventBusError::Unavailable(
                    format!("no redis connection within {CONNECT_TIMEOUT:?}: {cause}").into(),
                )
            }
        }
    }

    /// Waits on a dedicated connection for entries after `after`, at most until `wait`
    /// has passed (including any wait for a free reader connection).
    async fn block(
        &self,
        key: &StreamKey,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<EventEnvelope>, EventBusError> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let mut conn = match tokio::time::timeout_at(deadline, self.blocking.get()).await {
            Ok(Ok(conn)) => conn,
            // The wait ran out before a reader connection came free.
            Err(_) => return Ok(Vec::new()),
            // bb8 gave up, yet the last connect succeeded: every reader connection is busy
            // and Redis is up. Answer empty so the caller polls again; it is no outage.
            Ok(Err(RunError::TimedOut)) if lock(&self.last_error).is_none() => {
                return Ok(Vec::new());
            }
            Ok(Err(e)) => return Err(self.pool_error(e)),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        // BLOCK 0 would wait forever, so an (almost) spent wait ends here.
        let Ok(block_ms @ 1..) = u64::try_from(remaining.as_millis()) else {
            return Ok(Vec::new());
        };
        let id = format!("{after}-0");
        let reply: Option<StreamReadReply> = conn
            .run(async |c| {
                let mut xread = redis::cmd("XREAD");
                xread
                    .arg("BLOCK")
                    .arg(block_ms)
                    .arg("STREAMS")
                    .arg(key.as_str())
                    .arg(&id);
                let read = xread.query_async(c);
                match tokio::time::timeout(remaining + BLOCK_GRACE, read).await {
                    Ok(reply) => reply,
                    Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
                }
            })
            .await?;
        reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| decode(&entry))
            .collect()
    }
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisBus")
            .field("cap", &self.cap)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn append_batch(
        &self,
        key: &StreamKey,
        events: &[Arc<EventEnvelope>],
    ) -> Result<(), EventBusError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // The script trusts the ids to be consecutive; a gap inside the batch is refused here.
        for pair in events.windows(2) {
            if pair[0].event_id.checked_add(1) != Some(pair[1].event_id) {
                return Err(EventBusError::OutOfOrder {
                    last: pair[0].event_id,
                    got: pair[1].event_id,
                });
            }
        }
        let ttl = if events.iter().any(|e| e.is_terminal()) {
            self.ttl_ms.to_string()
        } else {
            String::new()
        };
        let mut invocation = self.append_batch.key(key.as_str());
        invocation.arg(first.event_id).arg(self.cap).arg(ttl);
        for event in events {
            let json =
                serde_json::to_string(&**event).map_err(|e| EventBusError::Corrupt(boxed(e)))?;
            invocation.arg(json);
        }
        let mut conn = self.conn(&self.pool).await?;
        let rejected: Option<u64> = conn.run(async |c| invocation.invoke_async(c).await).await?;
        match rejected {
            None => Ok(()),
            Some(last) => Err(EventBusError::OutOfOrder {
                last,
                got: first.event_id,
            }),
        }
    }

    async fn read_after(
        &self,
        key: &StreamKey,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<EventEnvelope>, EventBusError> {
        let start = format!("({after}-0");
        let (range, exists): (StreamRangeReply, bool) = self
            .conn(&self.pool)
            .await?
            .run(async |c| {
                redis::pipe()
                    .cmd("XRANGE")
                    .arg(key.as_str())
                    .arg(&start)
                    .arg("+")
                    .cmd("EXISTS")
                    .arg(key.as_str())
                    .query_async(c)
                    .await
            })
            .await?;
        if !range.ids.is_empty() {
            return range.ids.iter().map(decode).collect();
        }
        if !exists {
            return Err(EventBusError::NotFound);
        }
        if wait.is_zero() {
            return Ok(Vec::new());
        }
        // XREAD from the same id cannot miss an append made since the XRANGE.
        self.block(key, after, wait).await
    }

    async fn exists(&self, key: &StreamKey) -> Result<bool, EventBusError> {
        self.conn(&self.pool)
            .await?
            .run(async |c| redis::cmd("EXISTS").arg(key.as_str()).query_async(c).await)
            .await
    }

    async fn health(&self) -> Result<(), EventBusError> {
        self.conn(&self.pool)
            .await?
            .run(async |c| redis::cmd("PING").query_async(c).await)
            .await
    }
}

fn decode(entry: &StreamId) -> Result<EventEnvelope, EventBusError> {
    let json: Vec<u8> = entry.get(FIELD).ok_or_else(|| {
        EventBusError::Corrupt(format!("entry {} has no {FIELD} field", entry.id).into())
    })?;
    serde_json::from_slice(&json).map_err(|e| EventBusError::Corrupt(boxed(e)))
}

fn unavailable(e: RedisError) -> EventBusError {
    EventBusError::Unavailable(boxed(e))
}

/// The guarded value is a plain message, valid whatever a panicking holder did.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens multiplexed connections with one configuration and tells bb8 which to discard.
struct Manager {
    client: Client,
    config: AsyncConnectionConfig,
    /// The latest connect failure, cleared on success: bb8 only reports timeouts.
    last_error: Arc<Mutex<Option<String>>>,
}

struct Conn {
    inner: MultiplexedConnection,
    /// True while a request is in flight and after an I/O error: either way the reply
    /// stream may be out of step (cancelled blocking read, dead socket), so bb8 drops it.
    broken: bool,
    last_ok: Instant,
}

impl Conn {
    /// Runs one request, keeping the `broken` flag and the liveness time up to date.
    async fn run<T>(
        &mut self,
        request: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> Result<T, EventBusError> {
        self.broken = true;
        let result = request(&mut self.inner).await;
        match &result {
            Ok(_) => {
                self.broken = false;
                self.last_ok = Instant::now();
            }
            // A server error reply (wrong type, script error) leaves the socket fine.
            Err(e) => self.broken = e.is_io_error() || e.is_unrecoverable_error(),
        }
        result.map_err(unavailable)
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        let result = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await;
        *lock(&self.last_error) = result.as_ref().err().map(ToString::to_string);
        Ok(Conn {
            inner: result?,
            broken: false,
            last_ok: Instant::now(),
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        if conn.last_ok.elapsed() < TRUST_RECENT {
            return Ok(());
        }
        conn.broken = true;
        let () = redis::cmd("PING").query_async(&mut conn.inner).await?;
        conn.broken = false;
        conn.last_ok = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}
