//! The built-in web UI: the files of `web/` (a no-build single-page app of vendored ES
//! modules), embedded in the binary at build time, so a first run needs no Node.
//!
//! `web/index.html` is served at `/` with `%ASSETS%` replaced by `/assets/<hash>`, where the
//! hash covers every file: the page is never cached, everything it loads is cached for good
//! and a new build changes every asset URL at once. Text files are gzipped once, when the
//! table is built. Debug builds read `web/` from disk (rust-embed's behaviour) when the table
//! is built, so a restart shows an edit without a rebuild.
//!
//! The UI renders what models and tools wrote, so its responses carry a Content-Security-
//! Policy allowing only the service's own scripts, styles and connections, and no remote
//! images: a markdown image cannot carry the conversation to another host.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use poem::http::{HeaderMap, StatusCode, header};
use poem::web::Path;
use poem::{Request, Response, handler};
use sha2::{Digest, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Files;

/// The page and its assets by path, each also gzipped when that is smaller.
struct Table {
    /// `/assets/<hash>`, where every asset is served.
    prefix: String,
    index: Asset,
    assets: HashMap<String, Asset>,
}

struct Asset {
    body: Vec<u8>,
    gzip: Option<Vec<u8>>,
    content_type: &'static str,
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const INDEX: &str = "index.html";

/// Shown when the binary was built without `web/index.html`.
const NO_UI: &str = "<!doctype html><html><head><meta charset=utf-8><title>agent-runtime\
    </title></head><body><h1>agent-runtime</h1><p>The API lives under <code>/api</code>; \
    browse it at <a href=\"/docs\">/docs</a>.</p></body></html>";

impl Table {
    /// Hashing and gzipping a few hundred KB: done by the first request, not at start.
    async fn get() -> &'static Self {
        static TABLE: OnceLock<Table> = OnceLock::new();
        super::built_once(&TABLE, Self::build).await
    }

    fn build() -> Self {
        let mut files: Vec<(String, Vec<u8>)> = Files::iter()
            .filter(|path| !is_hidden(path))
            .filter_map(|path| Files::get(&path).map(|f| (path.into_owned(), f.data.into_owned())))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let prefix = format!("/assets/{}", hash_of(&files));
        let mut index = None;
        let mut assets = HashMap::with_capacity(files.len());
        for (path, body) in files {
            if path == INDEX {
                let html = String::from_utf8_lossy(&body).replace("%ASSETS%", &prefix);
                index = Some(Asset::new(html.into_bytes(), "text/html; charset=utf-8"));
            } else if let Some(content_type) = content_type_of(&path) {
                assets.insert(path, Asset::new(body, content_type));
            }
        }
        let index = index
            .unwrap_or_else(|| Asset::new(NO_UI.as_bytes().to_vec(), "text/html; charset=utf-8"));
        Self {
            prefix,
            index,
            assets,
        }
    }
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str) -> Self {
        let gzip = is_text(content_type)
            .then(|| gzip(&body))
            .flatten()
            .filter(|packed| packed.len() < body.len());
        Self {
            body,
            gzip,
            content_type,
        }
    }

    /// The asset's response, gzipped when the client takes it.
    fn respond(&'static self, req_headers: &HeaderMap, cache_control: &'static str) -> Response {
        let builder = Response::builder()
            .content_type(self.content_type)
            .header(header::CACHE_CONTROL, cache_control)
            .header(header::VARY, "Accept-Encoding")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "no-referrer")
            .header(header::CONTENT_SECURITY_POLICY, CSP);
        match &self.gzip {
            Some(packed) if accepts_gzip(req_headers) => builder
                .header(header::CONTENT_ENCODING, "gzip")
                .body(packed.as_slice()),
            _ => builder.body(self.body.as_slice()),
        }
    }
}

/// `/`: the single-page app (hash routing: every view lives under this one URL).
#[handler]
pub async fn page(req: &Request) -> Response {
    Table::get().await.index.respond(req.headers(), "no-cache")
}

/// `/assets/<hash>/<path>`: an asset of this build; another build's hash is 404, so a page
/// never mixes files of two builds.
#[handler]
pub async fn asset(req: &Request, Path((hash, path)): Path<(String, String)>) -> Response {
    let table = Table::get().await;
    let current = table.prefix.strip_prefix("/assets/") == Some(hash.as_str());
    match table.assets.get(&path) {
        Some(asset) if current => asset.respond(req.headers(), IMMUTABLE),
        _ => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

/// Dot files (editor state, markers) are not part of the UI.
fn is_hidden(path: &str) -> bool {
    path.split('/').any(|part| part.starts_with('.'))
}

/// The first 16 hex digits of a SHA-256 over every path and body.
fn hash_of(files: &[(String, Vec<u8>)]) -> String {
    let mut hasher = Sha256::new();
    for (path, body) in files {
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((body.len() as u64).to_le_bytes());
        hasher.update(body);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The served types; a file of any other type is left out.
fn content_type_of(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type == "application/json"
        || content_type == "image/svg+xml"
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3), Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let weight_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !weight_zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, accept.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted_with_weight() {
        for yes in ["gzip", "br, gzip;q=0.5", "GZIP", "*", "deflate,gzip"] {
            assert!(accepts_gzip(&headers(yes)), "{yes}");
        }
        for no in ["br", "gzip;q=0", "gzip; q=0.0", "identity", "gzipx"] {
            assert!(!accepts_gzip(&headers(no)), "{no}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_hash_covers_names_and_bodies() {
        let a = vec![("a.js".to_owned(), b"x".to_vec())];
        let renamed = vec![("b.js".to_owned(), b"x".to_vec())];
        let edited = vec![("a.js".to_owned(), b"y".to_vec())];
        assert_eq!(hash_of(&a).len(), 16);
        assert_ne!(hash_of(&a), hash_of(&renamed));
        assert_ne!(hash_of(&a), hash_of(&edited));
        assert_eq!(hash_of(&a), hash_of(&a.clone()));
    }

    #[test]
    fn only_known_types_are_served_and_dot_files_never() {
        assert_eq!(
            content_type_of("app/main.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type_of("vendor/LICENSES/x"), None);
        assert_eq!(content_type_of("notes.md"), None);
        assert!(is_hidden(".served") && is_hidden("app/.main.js.swp"));
        assert!(!is_hidden("app/main.js"));
    }

    #[test]
    fn text_is_gzipped_only_when_smaller() {
        let css = Asset::new(
            b"body { color: red; }\n".repeat(50),
            "text/css; charset=utf-8",
        );
        assert!(css.gzip.as_ref().is_some_and(|g| g.len() < css.body.len()));
        let tiny = Asset::new(b"x".to_vec(), "text/plain; charset=utf-8");
        assert!(tiny.gzip.is_none());
        let png = Asset::new(vec![0; 4096], "image/png");
        assert!(png.gzip.is_none());
    }
}
