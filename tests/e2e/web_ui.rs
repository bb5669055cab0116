//! The built-in web UI as the binary serves it: the page at `/` without credentials and
//! under a Content-Security-Policy, every file of `web/` under one hashed prefix with the
//! bytes of its source, cached for good and gzipped, and nothing else under that prefix.

use std::io::Read;
use std::path::{Path, PathBuf};

use reqwest::{StatusCode, header};

use crate::support::TestApp;

/// The budget for the UI's embedded files.
const MAX_UI_BYTES: u64 = 1_500_000;

/// Every served file of `web/` (dot files and unknown types are not served) by its path
/// under `web/`.
fn ui_files() -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.split('/').any(|p| p.starts_with('.')) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push((rel, path));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

const SERVED: &[&str] = &[
    "js", "mjs", "css", "json", "map", "svg", "png", "ico", "txt", "woff2",
];

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_every_asset_are_served_from_the_embedded_files() {
    let app = TestApp::sqlite().await;
    let page = app.get_open("/").await;
    assert_eq!(page.status(), StatusCode::OK, "open without credentials");
    let h = page.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for rule in [
        "script-src 'self'",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "{rule} in {csp}");
    }
    let html = page.text().await.unwrap();
    assert!(!html.contains("%ASSETS%"), "{html}");
    let at = html.find("/assets/").expect("the page loads its assets");
    let hash = &html[at + 8..at + 24];
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    let prefix = format!("{}/assets/{hash}", app.base);

    let files = ui_files();
    let total: u64 = files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total < MAX_UI_BYTES, "web/ holds {total} bytes");
    let mut served = 0;
    for (rel, path) in &files {
        let ext = rel.rsplit_once('.').map_or("", |(_, e)| e);
        if rel == "index.html" || !SERVED.contains(&ext) {
            continue;
        }
        let source = std::fs::read(path).unwrap();
        let resp = app
            .client
            .get(format!("{prefix}/{rel}"))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{rel}");
        let h = resp.headers().clone();
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let body = resp.bytes().await.unwrap();
        let body = match h.get(header::CONTENT_ENCODING) {
            Some(enc) => {
                assert_eq!(enc, "gzip");
                assert!(body.len() < source.len(), "{rel}: gzip only when smaller");
                gunzip(&body)
            }
            None => body.to_vec(),
        };
        assert_eq!(body, source, "{rel} is served as it is in web/");
        served += 1;
    }
    assert!(served >= 3, "the app, its styles and its vendored modules");

    let plain = app
        .client
        .get(format!("{prefix}/style.css"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(
        plain.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_but_this_builds_files_is_under_the_assets_prefix() {
    let app = TestApp::sqlite().await;
    let html = app.get_open("/").await.text().await.unwrap();
    let at = html.find("/assets/").unwrap();
    let hash = html[at + 8..at + 24].to_owned();
    for path in [
        format!("/assets/{hash}/../Cargo.toml"),
        format!("/assets/{hash}/%2e%2e/Cargo.toml"),
        format!("/assets/{hash}/index.html"),
        format!("/assets/{hash}/nothing.js"),
        format!("/assets/{hash}/.served"),
        "/assets/0000000000000000/style.css".to_owned(),
        "/assets/style.css".to_owned(),
    ] {
        let resp = app.get_open(&path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("[package]"), "{path}: {body}");
    }
}
