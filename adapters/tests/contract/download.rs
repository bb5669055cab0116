//! `ports::Downloader` contract for `HttpDownloader` against a real HTTP/1.1 server on
//! loopback: a few canned responses written byte by byte, so chunked bodies, announced
//! lengths and silent servers are exactly what the test says they are. Loopback is
//! refused by the outbound policy, so each test allows its server's port by name
//! (`FETCH_ALLOW_HOSTS`), and the refusal tests count what the server saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapters::download::HttpDownloader;
use adapters::outbound::{AllowList, OutboundPolicy};
use ports::{DownloadError, Downloaded, Downloader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The cap used by every test; bodies are sized around it.
const CAP: u64 = 1000;
/// Generous, so a loaded machine cannot trip it in tests that are not about it.
const PATIENT: Duration = Duration::from_secs(10);

/// A canned server on `127.0.0.1:0`, counting the requests it read.
struct Server {
    base: String,
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// A downloader whose allow-list names exactly this server's address and port.
    fn downloader(&self, timeout: Duration) -> HttpDownloader {
        downloader(&format!("127.0.0.1:{}", self.port), timeout)
    }

    async fn get(&self, path: &str) -> Result<Downloaded, DownloadError> {
        self.downloader(PATIENT)
            .download(&format!("{}{path}", self.base), CAP)
            .await
    }
}

/// Serves the canned routes until the test's runtime ends. Bound before it is returned,
/// so no test waits for readiness.
async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(socket, counter.clone()));
        }
    });
    Server {
        base: format!("http://127.0.0.1:{port}"),
        port,
        hits,
    }
}

async fn answer(mut socket: TcpStream, hits: Arc<AtomicUsize>) {
    let target = read_request_target(&mut socket).await;
    if target.is_empty() {
        return;
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let response = match path {
        "/files/report.txt" => respond(
            "200 OK",
            &["Content-Type: Text/Plain; charset=utf-8"],
            b"hello, world\n",
        ),
        "/files/no-type.bin" => respond("200 OK", &[], &[7u8; 5]),
        "/files/exactly-cap.bin" => respond("200 OK", &[], &[1u8; CAP as usize]),
        "/" => respond("200 OK", &["Content-Type: text/html"], b"<html></html>"),
        "/redirect" => respond("302 Found", &["Location: /files/final.csv"], b""),
        "/files/final.csv" => respond("200 OK", &["Content-Type: text/csv"], b"a,b\n1,2\n"),
        // `/hops?n=3` redirects three times before the file.
        "/hops" => match query.strip_prefix("n=").and_then(|n| n.parse::<u32>().ok()) {
            Some(0) | None => respond("200 OK", &[], b"landed"),
            Some(n) => respond(
                "307 Temporary Redirect",
                &[&format!("Location: /hops?n={}", n - 1)],
                b"",
            ),
        },
        // `/go?to=<url>` redirects anywhere.
        "/go" => respond(
            "302 Found",
            &[&format!("Location: {}", query.trim_start_matches("to="))],
            b"",
        ),
        "/private" => respond(
            "401 Unauthorized",
            &["WWW-Authenticate: Basic"],
            b"who are you",
        ),
        "/big" => respond("200 OK", &[], &[0u8; CAP as usize + 1]),
        "/chunked-big" => chunked(&[&[b'x'; 400], &[b'y'; 400], &[b'z'; 400]]),
        "/chunked-small" => chunked(&[b"abc", b"def"]),
        "/announced-huge" => {
            // Headers only: a downloader that waited for the body would time out instead.
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            return hold(socket).await;
        }
        "/silent" => return hold(socket).await,
        _ => respond("404 Not Found", &[], b"no such thing"),
    };
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

/// The request target, empty when the connection closed before a whole head came.
async fn read_request_target(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return String::new();
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace().nth(1).unwrap_or("/").to_owned()
}

/// Keeps the connection open without a word until the runtime ends.
async fn hold(socket: TcpStream) {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    drop(socket);
}

fn respond(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked body: no Content-Length, so only the streaming check can catch its size.
fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn downloader(allow: &str, timeout: Duration) -> HttpDownloader {
    let policy = OutboundPolicy {
        allow_private: false,
        allow: AllowList::parse(allow).unwrap(),
    };
    HttpDownloader::new(policy, timeout)
}

/// Whatever went wrong, the caller reads this one text.
const UNAVAILABLE: &str = "could not be downloaded";

fn assert_unavailable(result: Result<Downloaded, DownloadError>) {
    let err = result.unwrap_err();
    assert!(matches!(err, DownloadError::Unavailable), "{err:?}");
    assert_eq!(err.to_string(), UNAVAILABLE);
}

#[tokio::test]
async fn file_comes_with_bytes_type_without_parameters_and_name() {
    let srv = server().await;
    let got = srv.get("/files/report.txt?v=2").await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: b"hello, world\n".to_vec(),
            mime_type: Some("text/plain".into()),
            file_name: Some("report.txt".into()),
            final_url: format!("{}/files/report.txt?v=2", srv.base),
        }
    );
}

#[tokio::test]
async fn missing_content_type_is_none() {
    let srv = server().await;
    let got = srv.get("/files/no-type.bin").await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: vec![7; 5],
            mime_type: None,
            file_name: Some("no-type.bin".into()),
            final_url: format!("{}/files/no-type.bin", srv.base),
        }
    );
}

#[tokio::test]
async fn root_url_has_no_file_name() {
    let srv = server().await;
    let got = srv.get("/").await.unwrap();
    assert_eq!(got.file_name, None);
    assert_eq!(got.mime_type.as_deref(), Some("text/html"));
    assert_eq!(got.bytes, b"<html></html>");
}

#[tokio::test]
async fn not_found_is_unavailable_like_every_failure() {
    let srv = server().await;
    assert_unavailable(srv.get("/nothing-here").await);
}

#[tokio::test]
async fn body_of_exactly_the_cap_is_accepted() {
    let srv = server().await;
    let got = srv.get("/files/exactly-cap.bin").await.unwrap();
    assert_eq!(got.bytes, vec![1u8; CAP as usize]);
}

#[tokio::test]
async fn content_length_over_the_cap_is_too_large() {
    let srv = server().await;
    let err = srv.get("/big").await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
}

#[tokio::test]
async fn announced_length_is_refused_before_the_body_arrives() {
    let srv = server().await;
    let start = Instant::now();
    let err = srv.get("/announced-huge").await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
    assert!(
        start.elapsed() < PATIENT / 2,
        "waited {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_too_large() {
    let srv = server().await;
    let err = srv.get("/chunked-big").await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
}

#[tokio::test]
async fn chunked_body_under_the_cap_is_read_whole() {
    let srv = server().await;
    let got = srv.get("/chunked-small").await.unwrap();
    assert_eq!(got.bytes, b"abcdef");
}

#[tokio::test]
async fn silent_server_is_unavailable_after_the_timeout() {
    let srv = server().await;
    let start = Instant::now();
    assert_unavailable(
        srv.downloader(Duration::from_millis(300))
            .download(&format!("{}/silent", srv.base), CAP)
            .await,
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn non_http_schemes_and_garbage_are_invalid_urls() {
    for url in [
        "ftp://example.com/file.txt",
        "file:///etc/passwd",
        "not a url",
    ] {
        let err = downloader("", PATIENT)
            .download(url, CAP)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DownloadError::InvalidUrl(u) if u == url),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn redirect_names_the_final_file() {
    let srv = server().await;
    let got = srv.get("/redirect").await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: b"a,b\n1,2\n".to_vec(),
            mime_type: Some("text/csv".into()),
            file_name: Some("final.csv".into()),
            final_url: format!("{}/files/final.csv", srv.base),
        }
    );
}

#[tokio::test]
async fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let srv = server().await;
    let got = srv.get("/hops?n=5").await.unwrap();
    assert_eq!(got.bytes, b"landed");
    assert_eq!(srv.hits(), 6);
    assert_unavailable(srv.get("/hops?n=6").await);
}

#[tokio::test]
async fn loopback_is_refused_in_every_spelling_without_a_request() {
    let srv = server().await;
    let p = srv.port;
    let strict = downloader("", PATIENT);
    // FETCH_ALLOW_PRIVATE opens private ranges, never loopback.
    let private = HttpDownloader::new(
        OutboundPolicy {
            allow_private: true,
            allow: AllowList::default(),
        },
        PATIENT,
    );
    for url in [
        format!("http://127.0.0.1:{p}/"),
        format!("http://localhost:{p}/"),
        format!("http://0.0.0.0:{p}/"),
        format!("http://2130706433:{p}/"),
        format!("http://0x7f000001:{p}/"),
        format!("http://0177.0.0.1:{p}/"),
        format!("http://127.1:{p}/"),
        format!("http://[::1]:{p}/"),
        format!("http://[::ffff:127.0.0.1]:{p}/"),
        format!("https://127.0.0.1:{p}/"),
    ] {
        assert_unavailable(strict.download(&url, CAP).await);
        assert_unavailable(private.download(&url, CAP).await);
    }
    assert_eq!(srv.hits(), 0, "the server saw a request");
}

#[tokio::test]
async fn the_allow_list_exempts_its_port_and_names_resolve_to_it() {
    let srv = server().await;
    let allowed = srv.downloader(PATIENT);
    let got = allowed
        .download(
            &format!("http://localhost:{}/files/report.txt", srv.port),
            CAP,
        )
        .await
        .unwrap();
    assert_eq!(got.bytes, b"hello, world\n");
    // another port of the same address is not exempt
    let other = server().await;
    assert_unavailable(
        allowed
            .download(&format!("{}/files/report.txt", other.base), CAP)
            .await,
    );
    assert_eq!(other.hits(), 0);
    // a name entry exempts that name on that port
    let by_name = downloader(&format!("localhost:{}", other.port), PATIENT);
    let got = by_name
        .download(&format!("http://localhost:{}/", other.port), CAP)
        .await
        .unwrap();
    assert_eq!(got.bytes, b"<html></html>");
    assert_unavailable(
        by_name
            .download(&format!("http://127.0.0.1:{}/", other.port), CAP)
            .await,
    );
}

#[tokio::test]
async fn a_redirect_from_an_allowed_server_to_a_refused_one_is_not_followed() {
    let allowed = server().await;
    let target = server().await;
    for to in [
        format!("{}/files/report.txt", target.base),
        format!("http://localhost:{}/", target.port),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        assert_unavailable(allowed.get(&format!("/go?to={to}")).await);
    }
    assert_eq!(target.hits(), 0, "the refused server saw a request");
    assert_eq!(allowed.hits(), 4);
}

#[tokio::test]
async fn a_closed_port_a_401_and_a_refusal_read_the_same() {
    let srv = server().await;
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let allow = format!("127.0.0.1:{},127.0.0.1:{closed}", srv.port);
    let d = downloader(&allow, PATIENT);
    let texts: Vec<String> = [
        format!("http://127.0.0.1:{closed}/"),
        format!("{}/private", srv.base),
        "http://127.0.0.1:1/".to_owned(),
        "http://no-such-host.invalid/".to_owned(),
    ]
    .iter()
    .map(|url| async { d.download(url, CAP).await.unwrap_err().to_string() })
    .collect::<futures::future::JoinAll<_>>()
    .await;
    assert_eq!(texts, vec![UNAVAILABLE; 4]);
}
