//! The connection as hyper reads it: every request head is held back until it is whole and
//! judged (see `head`), with the header, idle and keep-alive rules applied while waiting.
//!
//! - The first head must arrive within the header read timeout of the accept; a later one
//!   within that timeout of its first byte.
//! - Between requests (nothing in flight, nothing received) the connection may stay idle
//!   for the idle timeout, then it is closed. While a response is in flight (an event
//!   stream lasting minutes) no timer runs.
//! - A refused head never reaches hyper: the guard hands hyper a stand-in request carrying
//!   the refusal instead (`conn` answers it in the JSON error shape), so the answer is
//!   written in order, after any earlier response, and the connection then closes.
//! - Body bytes pass through counted (Content-Length), so the next head is judged too; a
//!   chunked or upgraded request is the connection's last (`close_after`).

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::task::AtomicWaker;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use super::head::{self, Framing, Refusal, Verdict};

/// What the guard and the request handling of one connection share.
pub struct ConnState {
    /// Responses not yet fully written (their bodies alive).
    in_flight: AtomicUsize,
    /// The current request is the connection's last.
    close_after: AtomicBool,
    /// Marks the stand-in requests of refusals; random, so no client can forge one.
    pub token: String,
    /// The reader waiting for the last response to end, to start the idle timer then:
    /// hyper does not poll the socket again when a response ends.
    idle_waker: AtomicWaker,
}

impl ConnState {
    pub fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            close_after: AtomicBool::new(false),
            token: uuid::Uuid::new_v4().simple().to_string(),
            idle_waker: AtomicWaker::new(),
        }
    }

    pub fn close_after(&self) -> bool {
        self.close_after.load(Ordering::Acquire)
    }
}

/// Counts a response as in flight while it lives.
pub struct InFlight(Arc<ConnState>);

impl InFlight {
    pub fn enter(state: &Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_waker.wake();
        }
    }
}

/// The timeouts the guard applies.
#[derive(Debug, Clone, Copy)]
pub struct GuardTimeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

enum Phase {
    /// Waiting for a whole head.
    Head,
    /// Passing this many body bytes, then the next head.
    Body(u64),
    /// Passing everything: this request is the last.
    Through,
    /// A refusal was handed over; nothing more is read.
    Refused,
}

/// An IO whose reads hyper sees only once each head is judged.
pub struct Guarded<IO> {
    io: IO,
    state: Arc<ConnState>,
    timeouts: GuardTimeouts,
    phase: Phase,
    /// Read from the socket, not yet handed over.
    pending: Vec<u8>,
    /// Judged bytes for hyper, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    /// How much of `pending` was searched for a blank line.
    scanned: usize,
    /// When the current head started: the accept for the first, else its first byte.
    head_started: Option<Instant>,
    /// When the connection was first seen idle between requests.
    idle_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

impl<IO> Guarded<IO> {
    pub fn new(io: IO, state: Arc<ConnState>, timeouts: GuardTimeouts) -> Self {
        let now = Instant::now();
        Self {
            io,
            state,
            timeouts,
            phase: Phase::Head,
            pending: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            scanned: 0,
            head_started: Some(now),
            idle_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.header_read)),
        }
    }

    /// Moves judged bytes out of `pending` or on to the next phase; `false` when nothing
    /// can move without more bytes from the socket.
    fn advance(&mut self) -> bool {
        match self.phase {
            Phase::Refused => false,
            Phase::Body(0) => {
                self.phase = Phase::Head;
                self.head_started = None;
                true
            }
            Phase::Body(left) => {
                let n = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(self.pending.len());
                if n == 0 {
                    return false;
                }
                self.hand_over(n);
                self.phase = Phase::Body(left - n as u64);
                true
            }
            Phase::Through => {
                let n = self.pending.len();
                n > 0 && {
                    self.hand_over(n);
                    true
                }
            }
            Phase::Head => self.judge_pending(),
        }
    }

    /// Judges `pending` when it may hold a whole head or is over the cap.
    fn judge_pending(&mut self) -> bool {
        // Blank lines before a request are ignored (RFC 9112 §2.2); dropping them here
        // keeps them from counting against the cap or the scan.
        let blank = self
            .pending
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            self.pending.drain(..blank);
            self.scanned = self.scanned.saturating_sub(blank);
        }
        let worth = head::may_be_complete(&self.pending, self.scanned)
            || self.pending.len() > head::MAX_HEAD_BYTES;
        self.scanned = self.pending.len();
        if !worth {
            return false;
        }
        match head::judge(&self.pending) {
            None => false,
            Some(Verdict::Refuse(refusal)) => {
                self.refuse(refusal);
                true
            }
            Some(Verdict::Pass { len, framing }) => {
                self.hand_over(len);
                self.scanned = 0;
                self.head_started = None;
                self.idle_since = None;
                self.phase = match framing {
                    Framing::Length(n) => Phase::Body(n),
                    Framing::UntilClose => {
                        self.state.close_after.store(true, Ordering::Release);
                        Phase::Through
                    }
                };
                true
            }
        }
    }

    /// Queues the first `n` pending bytes for hyper.
    fn hand_over(&mut self, n: usize) {
        if self.ready_at >= self.ready.len() {
            self.ready.clear();
            self.ready_at = 0;
        }
        if n == self.pending.len() && self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut self.pending);
        } else {
            self.ready.extend(self.pending.drain(..n));
        }
    }

    /// Hands hyper a stand-in request that `conn` answers with the refusal, then reads
    /// nothing more.
    fn refuse(&mut self, refusal: Refusal) {
        tracing::debug!(?refusal, "refusing a request head");
        self.pending = Vec::new();
        let head = format!(
            "GET / HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n{}: {}{}\r\n\r\n",
            super::conn::REFUSAL_HEADER,
            self.state.token,
            char::from(refusal.tag()),
        );
        self.ready.extend_from_slice(head.as_bytes());
        self.phase = Phase::Refused;
    }

    /// When waiting for a head must end, and what then: `None` while a response is in
    /// flight and nothing was received (a stream may last minutes).
    fn deadline(&mut self) -> Option<Instant> {
        if !self.pending.is_empty() || self.head_started.is_some() {
            let started = *self.head_started.get_or_insert_with(Instant::now);
            self.idle_since = None;
            return Some(started + self.timeouts.header_read);
        }
        if self.state.in_flight.load(Ordering::Acquire) > 0 {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        Some(since + self.timeouts.idle)
    }

    /// Copies ready bytes into hyper's buffer.
    fn copy_ready(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let available = &self.ready[self.ready_at..];
        if available.is_empty() {
            return false;
        }
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.ready_at += n;
        if self.ready_at == self.ready.len() {
            self.ready = Vec::new();
            self.ready_at = 0;
        }
        true
    }
}

impl<IO: AsyncRead + Unpin> Guarded<IO> {
    /// Reads what the socket has into `pending`: `Ready(Ok(0))` at EOF.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled();
                if !got.is_empty() && matches!(self.phase, Phase::Head) {
                    self.head_started.get_or_insert_with(Instant::now);
                }
                self.pending.extend_from_slice(got);
                Poll::Ready(Ok(got.len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Runs the head timers while no bytes come: `Ready` once one fired and was handled.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Expired> {
        self.state.idle_waker.register(cx.waker());
        let Some(deadline) = self.deadline() else {
            return Poll::Pending;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if self.pending.is_empty() {
            // Nothing of a request came: close without a word, as for any idle peer.
            Poll::Ready(Expired::Close)
        } else {
            self.refuse(Refusal::Timeout);
            Poll::Ready(Expired::Refused)
        }
    }
}

enum Expired {
    Close,
    Refused,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.copy_ready(buf) {
                return Poll::Ready(Ok(()));
            }
            if this.advance() {
                continue;
            }
            if matches!(this.phase, Phase::Refused) {
                // hyper writes the refusal and closes; nothing else is read.
                return Poll::Pending;
            }
            match this.fill(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if !matches!(this.phase, Phase::Head) {
                return Poll::Pending;
            }
            match this.poll_timers(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Expired::Close) => return Poll::Ready(Ok(())),
                Poll::Ready(Expired::Refused) => continue,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUTS: GuardTimeouts = GuardTimeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(10),
    };

    /// What hyper would read from a client that sent `sent` and then closed.
    async fn through(sent: &[u8]) -> (String, Arc<ConnState>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(sent).await.unwrap();
        client.shutdown().await.unwrap();
        let state = Arc::new(ConnState::new());
        let mut guarded = Guarded::new(server, state.clone(), TIMEOUTS);
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), guarded.read_to_end(&mut out));
        // A refusal leaves the reader pending (hyper closes the connection itself).
        let _ = read.await;
        (String::from_utf8(out).unwrap(), state)
    }

    #[tokio::test]
    async fn body_bytes_pass_uncounted_as_heads_and_the_next_head_is_judged() {
        let sent =
            "POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\nGARBAGE\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let (out, state) = through(sent.as_bytes()).await;
        assert_eq!(out, sent);
        assert!(!state.close_after());
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_head_after_a_good_request_becomes_a_stand_in_refusal() {
        let (out, state) =
            through(b"GET /a HTTP/1.1\r\n\r\nGARBAGE\r\n\r\nGET /c HTTP/1.1\r\n\r\n").await;
        let stand_in = format!(
            "GET / HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n{}: {}m\r\n\r\n",
            super::super::conn::REFUSAL_HEADER,
            state.token
        );
        assert_eq!(out, format!("GET /a HTTP/1.1\r\n\r\n{stand_in}"));
    }

    #[tokio::test]
    async fn blank_lines_between_requests_are_dropped() {
        let (out, _) = through(b"\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n").await;
        assert_eq!(out, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_chunked_request_is_the_last_and_passes_whole() {
        let sent = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGARBAGE\r\n\r\n";
        let (out, state) = through(sent.as_bytes()).await;
        assert_eq!(out, sent);
        assert!(state.close_after());
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timer_waits_for_the_response_in_flight() {
        let (mut client, server) = tokio::io::duplex(1024);
        let state = Arc::new(ConnState::new());
        let mut guarded = Guarded::new(server, state.clone(), TIMEOUTS);
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        let mut head = [0u8; 19];
        guarded.read_exact(&mut head).await.unwrap();
        let response = InFlight::enter(&state);
        let mut byte = [0u8; 1];
        // A stream far longer than the idle timeout: the connection stays open …
        let waited = tokio::time::timeout(TIMEOUTS.idle * 30, guarded.read(&mut byte)).await;
        assert!(waited.is_err(), "closed while a response was in flight");
        drop(response);
        // … and closes once idle after it.
        let read = tokio::time::timeout(TIMEOUTS.idle * 2, guarded.read(&mut byte)).await;
        assert_eq!(
            read.unwrap().unwrap(),
            0,
            "EOF for hyper after the idle timeout"
        );
    }
}
