//! `ports::Downloader` contract for `HttpDownloader` against a real HTTP/1.1 server on
//! loopback: a few canned responses written byte by byte, so chunked bodies, announced
//! lengths and silent servers are exactly what the test says they are.

use std::time::{Duration, Instant};

use adapters::download::HttpDownloader;
use ports::{DownloadError, Downloaded, Downloader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The cap used by every test; bodies are sized around it.
const CAP: u64 = 1000;
/// Generous, so a loaded machine cannot trip it in tests that are not about it.
const PATIENT: Duration = Duration::from_secs(10);

/// Serves the canned routes on `127.0.0.1:0` until the test's runtime ends; returns the
/// base URL. Bound before it is returned, so no test waits for readiness.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(socket));
        }
    });
    base
}

async fn answer(mut socket: TcpStream) {
    let path = read_request_path(&mut socket).await;
    let response = match path.as_str() {
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

async fn read_request_path(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    target.split('?').next().unwrap_or("/").to_owned()
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

fn downloader(timeout: Duration) -> HttpDownloader {
    HttpDownloader::new(timeout).unwrap()
}

async fn get(url: &str) -> Result<Downloaded, DownloadError> {
    downloader(PATIENT).download(url, CAP).await
}

#[tokio::test]
async fn file_comes_with_bytes_type_without_parameters_and_name() {
    let base = server().await;
    let got = get(&format!("{base}/files/report.txt?v=2")).await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: b"hello, world\n".to_vec(),
            mime_type: Some("text/plain".into()),
            file_name: Some("report.txt".into()),
        }
    );
}

#[tokio::test]
async fn missing_content_type_is_none() {
    let base = server().await;
    let got = get(&format!("{base}/files/no-type.bin")).await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: vec![7; 5],
            mime_type: None,
            file_name: Some("no-type.bin".into()),
        }
    );
}

#[tokio::test]
async fn root_url_has_no_file_name() {
    let base = server().await;
    let got = get(&format!("{base}/")).await.unwrap();
    assert_eq!(got.file_name, None);
    assert_eq!(got.mime_type.as_deref(), Some("text/html"));
    assert_eq!(got.bytes, b"<html></html>");
}

#[tokio::test]
async fn not_found_is_status_404() {
    let base = server().await;
    let err = get(&format!("{base}/nothing-here")).await.unwrap_err();
    assert!(matches!(err, DownloadError::Status(404)), "{err:?}");
}

#[tokio::test]
async fn body_of_exactly_the_cap_is_accepted() {
    let base = server().await;
    let got = get(&format!("{base}/files/exactly-cap.bin")).await.unwrap();
    assert_eq!(got.bytes, vec![1u8; CAP as usize]);
}

#[tokio::test]
async fn content_length_over_the_cap_is_too_large() {
    let base = server().await;
    let err = get(&format!("{base}/big")).await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
}

#[tokio::test]
async fn announced_length_is_refused_before_the_body_arrives() {
    let base = server().await;
    let start = Instant::now();
    let err = get(&format!("{base}/announced-huge")).await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
    assert!(
        start.elapsed() < PATIENT / 2,
        "waited {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_too_large() {
    let base = server().await;
    let err = get(&format!("{base}/chunked-big")).await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(CAP)), "{err:?}");
}

#[tokio::test]
async fn chunked_body_under_the_cap_is_read_whole() {
    let base = server().await;
    let got = get(&format!("{base}/chunked-small")).await.unwrap();
    assert_eq!(got.bytes, b"abcdef");
}

#[tokio::test]
async fn silent_server_is_a_network_error_after_the_timeout() {
    let base = server().await;
    let start = Instant::now();
    let err = downloader(Duration::from_millis(300))
        .download(&format!("{base}/silent"), CAP)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Network(_)), "{err:?}");
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
        let err = get(url).await.unwrap_err();
        assert!(
            matches!(&err, DownloadError::InvalidUrl(u) if u == url),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn redirect_names_the_final_file() {
    let base = server().await;
    let got = get(&format!("{base}/redirect")).await.unwrap();
    assert_eq!(
        got,
        Downloaded {
            bytes: b"a,b\n1,2\n".to_vec(),
            mime_type: Some("text/csv".into()),
            file_name: Some("final.csv".into()),
        }
    );
}
