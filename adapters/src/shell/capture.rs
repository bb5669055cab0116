//! Supervising one spawned command: stdout and stderr read concurrently and capped, a
//! deadline, and a bounded wait for the readers once the command is over.
//!
//! Shared by the local and the docker shell so both report truncation and timeouts alike.
//! The readers must be bounded in time: a grandchild that called `setsid` escapes the
//! process-group kill and may keep the pipes open forever.

use std::time::Duration;

use ports::ShellOutput;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// How long the readers may keep draining after the command ended or was killed. Output
/// written later by an escaped process is lost.
const READER_GRACE: Duration = Duration::from_millis(150);

/// How long to wait for a SIGKILLed command to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// What to do with the command's leftovers.
pub(crate) trait Stopper {
    /// The command exited on its own: clean up what it left behind.
    fn finished(&mut self);
    /// The deadline passed: kill everything the command started.
    fn abort(&mut self);
}

/// Runs `child` to completion or `timeout`, keeping at most `cap` bytes of each stream.
///
/// On timeout, `stopper.abort()` is called and the result has `timed_out` set and no exit
/// code. Cancellation (dropping this future) is handled by the caller's guards.
pub(crate) async fn supervise(
    child: &mut Child,
    stopper: &mut impl Stopper,
    timeout: Duration,
    cap: usize,
) -> std::io::Result<ShellOutput> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut out = Capture::new(cap);
    let mut err = Capture::new(cap);

    let (exit_code, timed_out) = {
        let readers = futures::future::join(pump(stdout, &mut out), pump(stderr, &mut err));
        tokio::pin!(readers);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut readers_done = false;

        let waited = loop {
            tokio::select! {
                status = child.wait() => break Some(status),
                _ = &mut readers, if !readers_done => readers_done = true,
                () = &mut deadline => break None,
            }
        };
        let result = match waited {
            Some(Ok(status)) => {
                stopper.finished();
                (status.code(), false)
            }
            Some(Err(e)) => {
                stopper.abort();
                return Err(e);
            }
            None => {
                stopper.abort();
                // Reap the killed child; the exit status no longer matters.
                let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
                (None, true)
            }
        };
        if !readers_done {
            let _ = tokio::time::timeout(READER_GRACE, &mut readers).await;
        }
        result
    };

    Ok(ShellOutput {
        exit_code,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        stdout: out.into_string(),
        stderr: err.into_string(),
        timed_out,
    })
}

/// Reads `reader` to its end, keeping what fits in `capture` and dropping the rest.
async fn pump<R: AsyncRead + Unpin>(reader: Option<R>, capture: &mut Capture) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => capture.push(buf.get(..n).unwrap_or_default()),
        }
    }
}

/// At most `cap` bytes of one stream.
#[derive(Debug)]
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }

    /// The kept bytes as text: a character cut by the cap is dropped whole, anything else
    /// that is not UTF-8 becomes U+FFFD.
    fn into_string(self) -> String {
        let end = if self.truncated {
            complete_prefix(&self.bytes)
        } else {
            self.bytes.len()
        };
        String::from_utf8_lossy(self.bytes.get(..end).unwrap_or_default()).into_owned()
    }
}

/// The length of `bytes` without a trailing, incomplete UTF-8 sequence.
fn complete_prefix(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let byte = bytes.get(len - back).copied().unwrap_or_default();
        if byte & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let needed = match byte {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_keeps_a_prefix_and_flags_the_rest() {
        let mut c = Capture::new(5);
        c.push(b"abc");
        c.push(b"defgh");
        assert!(c.truncated);
        assert_eq!(c.into_string(), "abcde");
    }

    #[test]
    fn exact_fit_is_not_truncated() {
        let mut c = Capture::new(3);
        c.push(b"abc");
        c.push(b"");
        assert!(!c.truncated);
        assert_eq!(c.into_string(), "abc");
    }

    #[test]
    fn a_character_cut_by_the_cap_is_dropped() {
        let mut c = Capture::new(5);
        c.push("ééé".as_bytes()); // 6 bytes
        assert!(c.truncated);
        assert_eq!(c.into_string(), "éé");
        let mut c = Capture::new(3);
        c.push("a€".as_bytes()); // '€' is 3 bytes
        assert_eq!(c.into_string(), "a");
        let mut c = Capture::new(4);
        c.push("a€b".as_bytes());
        assert_eq!(c.into_string(), "a€");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut c = Capture::new(100);
        c.push(b"a\xffb");
        assert_eq!(c.into_string(), "a\u{FFFD}b");
    }
}
