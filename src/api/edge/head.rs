//! Judging a request head before hyper sees it.
//!
//! hyper answers a head it cannot take (too large, URI too long, malformed) itself, with an
//! empty body. So the edge parses each head first, with the same parser (httparse) and the
//! same framing rules, and refuses what hyper would refuse, or what is over our own caps,
//! in the JSON error shape instead.

use poem::http::StatusCode;

/// Request line plus headers, in all (431 above).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The request target (414 above): generous for any URL of this API.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Header lines per request (431 above); hyper's own default.
pub const MAX_HEADERS: usize = 100;

/// What to do with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// hyper may have it: the head is `len` bytes, followed by a body framed as `framing`.
    Pass { len: usize, framing: Framing },
    /// Answer with an error and close.
    Refuse(Refusal),
}

/// Where a request's body ends, as far as the edge needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (0 when absent): the next head starts after this many bytes.
    Length(u64),
    /// Chunked, or a connection upgrade: the edge does not parse these, so the connection
    /// closes after this request rather than take a next head unchecked.
    UntilClose,
}

/// Why a connection was refused before its request reached an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    UriTooLong,
    HeadersTooLarge,
    /// The head did not arrive within the header read timeout.
    Timeout,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The stable error code (see `api::error`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => crate::api::error::MALFORMED_REQUEST,
            Self::UriTooLong => crate::api::error::URI_TOO_LONG,
            Self::HeadersTooLarge => crate::api::error::HEADERS_TOO_LARGE,
            Self::Timeout => crate::api::error::REQUEST_TIMEOUT,
        }
    }

    pub fn message(self) -> String {
        match self {
            Self::Malformed => "malformed HTTP request".to_owned(),
            Self::UriTooLong => format!("request target longer than {MAX_URI_BYTES} bytes"),
            Self::HeadersTooLarge => format!(
                "request headers larger than {MAX_HEAD_BYTES} bytes or more than {MAX_HEADERS} lines"
            ),
            Self::Timeout => "the request headers did not arrive in time".to_owned(),
        }
    }

    /// A one-byte tag, to carry the refusal through hyper (see `conn`).
    pub fn tag(self) -> u8 {
        match self {
            Self::Malformed => b'm',
            Self::UriTooLong => b'u',
            Self::HeadersTooLarge => b'h',
            Self::Timeout => b't',
        }
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        [
            Self::Malformed,
            Self::UriTooLong,
            Self::HeadersTooLarge,
            Self::Timeout,
        ]
        .into_iter()
        .find(|r| r.tag() == tag)
    }
}

/// Whether bytes from `from` on complete a line that could end a head (a blank line),
/// so parsing is worth trying: parsing after every read would cost quadratic time
/// against a client sending one byte at a time.
pub fn may_be_complete(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.saturating_sub(2)..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// Judges the head at the start of `buf` (blank lines before it already dropped).
/// `None`: incomplete and under the caps, read on.
pub fn judge(buf: &[u8]) -> Option<Verdict> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let refuse = |r| Some(Verdict::Refuse(r));
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => refuse(oversize(buf)),
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(len)) => {
            let path = req.path.unwrap_or_default();
            if path.len() > MAX_URI_BYTES {
                refuse(Refusal::UriTooLong)
            } else if len > MAX_HEAD_BYTES {
                refuse(Refusal::HeadersTooLarge)
            } else if poem::http::Uri::try_from(path).is_err() {
                // hyper parses the target with `http`, stricter than httparse.
                refuse(Refusal::Malformed)
            } else {
                match framing(&req) {
                    Some(framing) => Some(Verdict::Pass { len, framing }),
                    None => refuse(Refusal::Malformed),
                }
            }
        }
        Err(httparse::Error::TooManyHeaders) => refuse(Refusal::HeadersTooLarge),
        Err(_) if buf.len() > MAX_HEAD_BYTES => refuse(oversize(buf)),
        Err(_) => refuse(Refusal::Malformed),
    }
}

/// An oversize head whose request line alone is too long is a long URI.
fn oversize(buf: &[u8]) -> Refusal {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_URI_BYTES + 64 => Refusal::HeadersTooLarge,
        _ => Refusal::UriTooLong,
    }
}

/// The body framing by hyper's rules (RFC 9112 §6.3): Transfer-Encoding wins and must
/// end in `chunked` (and needs HTTP/1.1); Content-Length values must be digits and agree.
/// `None`: hyper would refuse the head.
fn framing(req: &httparse::Request<'_, '_>) -> Option<Framing> {
    let headers: &[httparse::Header<'_>] = req.headers;
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let upgrade = req.method == Some("CONNECT") || named("upgrade").next().is_some();
    if let Some(last) = named("transfer-encoding").next_back() {
        let chunked = last
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return (req.version == Some(1) && chunked).then_some(Framing::UntilClose);
    }
    let mut length = None;
    for value in named("content-length") {
        let n = digits(value)?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    Some(if upgrade {
        Framing::UntilClose
    } else {
        Framing::Length(length.unwrap_or(0))
    })
}

fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(head: &str) -> Framing {
        match judge(head.as_bytes()) {
            Some(Verdict::Pass { len, framing }) => {
                assert_eq!(len, head.len(), "{head}");
                framing
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    fn refused(head: &[u8]) -> Refusal {
        match judge(head) {
            Some(Verdict::Refuse(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn well_formed_heads_pass_with_their_body_length() {
        assert_eq!(
            pass("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"),
            Framing::Length(0)
        );
        assert_eq!(
            pass("POST /a HTTP/1.1\r\ncontent-length: 12\r\nContent-Length: 12\r\n\r\n"),
            Framing::Length(12)
        );
        assert_eq!(
            pass(
                "POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Framing::UntilClose
        );
        assert_eq!(
            pass("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            Framing::UntilClose
        );
        assert_eq!(pass("GET / HTTP/1.0\n\n"), Framing::Length(0));
    }

    #[test]
    fn incomplete_heads_under_the_cap_wait() {
        assert_eq!(judge(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(judge(b"GE"), None);
    }

    #[test]
    fn garbage_and_bad_framing_are_malformed() {
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(
                refused(head),
                Refusal::Malformed,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn caps_on_uri_headers_and_lines() {
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES));
        assert_eq!(refused(long_uri.as_bytes()), Refusal::UriTooLong);
        let endless_line = "a".repeat(MAX_HEAD_BYTES + 1);
        assert_eq!(refused(endless_line.as_bytes()), Refusal::UriTooLong);
        let big = format!(
            "GET / HTTP/1.1\r\nx: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(refused(big.as_bytes()), Refusal::HeadersTooLarge);
        let unfinished = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(refused(unfinished.as_bytes()), Refusal::HeadersTooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(refused(many.as_bytes()), Refusal::HeadersTooLarge);
    }

    #[test]
    fn a_blank_line_is_needed_before_parsing() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(!may_be_complete(&head[..20], 0));
        assert!(may_be_complete(head, 0));
        assert!(may_be_complete(head, head.len() - 1));
        assert!(may_be_complete(b"GET / HTTP/1.0\n\n", 15));
        assert!(!may_be_complete(b"GET / HTTP/1.1\r\nA: b\r\n", 0));
    }

    #[test]
    fn refusal_tags_round_trip() {
        for r in [
            Refusal::Malformed,
            Refusal::UriTooLong,
            Refusal::HeadersTooLarge,
            Refusal::Timeout,
        ] {
            assert_eq!(Refusal::from_tag(r.tag()), Some(r));
        }
        assert_eq!(Refusal::from_tag(b'x'), None);
    }
}
