//! Input parts (spec 03): the caller's user message, checked, then turned into the user
//! message.
//!
//! Two steps, because the spec answers every cheap mistake (empty input, bad base64,
//! oversize parts) with 422 before a session exists, while downloads and writes need the
//! environment, which opens only later. Attachments land under `.uploads/<session_id>/`
//! through the `Workspace` port, so they obey the same path policy as the agent's tools,
//! and the model is told where they are so it can open them with those tools.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ports::SessionId;
use ports::{DownloadError, Downloader, InputPart, UserPart, Workspace, WorkspaceError};

use crate::core::preset_validation::FieldError;

/// Callers' encoders disagree on padding; both forms mean the same bytes.
const BASE64_IN: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest file name common file systems accept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Saved names are cut shorter than [`MAX_NAME_BYTES`] to leave room for the `-<i>` that
/// tells two attachments of the same name apart.
const MAX_SAVED_NAME_BYTES: usize = 200;

/// Image formats every supported vision model accepts, by extension. Anything else is
/// attached as a file only: a provider rejecting an image would fail the whole run.
const IMAGE_EXTENSIONS: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
];

/// Extensions for saved files whose name the caller did not give, so the agent's tools
/// (and the model) recognise the kind of file.
const EXTENSIONS: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("application/pdf", "pdf"),
    ("application/json", "json"),
    ("application/zip", "zip"),
    ("text/plain", "txt"),
    ("text/markdown", "md"),
    ("text/csv", "csv"),
    ("text/html", "html"),
];

/// Bounds on one user message, so a single request cannot exhaust memory or the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    pub max_parts: usize,
    /// Per text part.
    pub max_text_bytes: usize,
    /// Decoded, per binary part; also the largest image file sent inline to the model.
    pub max_binary_bytes: usize,
    /// Per downloaded URL.
    pub max_download_bytes: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_parts: 32,
            max_text_bytes: 1 << 20,
            max_binary_bytes: 8 << 20,
            max_download_bytes: 20 << 20,
        }
    }
}

/// The user message of a run and what the conversation shows for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Materialized {
    pub parts: Vec<UserPart>,
    /// The caller's text plus one line per attachment: what a human reading the
    /// conversation needs, without the notes written for the model.
    pub display_text: String,
}

impl Materialized {
    /// Puts runtime-written text (fired mailbox outcomes) before the caller's input, in
    /// the model's message and in the transcript.
    pub fn prepend(&mut self, text: String) {
        self.display_text = if self.display_text.is_empty() {
            text.clone()
        } else {
            format!("{text}\n\n{}", self.display_text)
        };
        self.parts.insert(0, UserPart::Text { text });
    }
}

/// Checks everything that needs no I/O, so a bad request is refused before a session or
/// an environment exists. Every broken rule is reported, with paths like `input[2].data`.
pub fn validate(parts: &[InputPart], limits: &InputLimits) -> Result<(), Vec<FieldError>> {
    if parts.iter().all(is_blank_text) {
        return Err(vec![field_error("input", "input is empty")]);
    }
    if parts.len() > limits.max_parts {
        // Checking thousands of parts one by one would only lengthen the answer.
        return Err(vec![field_error(
            "input",
            format!(
                "has {} parts; at most {} are allowed",
                parts.len(),
                limits.max_parts
            ),
        )]);
    }
    let mut errors = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            InputPart::Text { text } if text.len() > limits.max_text_bytes => {
                errors.push(field_error(
                    format!("input[{i}].text"),
                    format!(
                        "is {} bytes; at most {} are allowed",
                        text.len(),
                        limits.max_text_bytes
                    ),
                ));
            }
            InputPart::Text { .. } => {}
            InputPart::Url { url } => {
                if let Some(problem) = url_problem(url) {
                    errors.push(field_error(format!("input[{i}].url"), problem));
                }
            }
            InputPart::File { path } => {
                if path.trim().is_empty() {
                    errors.push(field_error(format!("input[{i}].path"), "must not be empty"));
                }
            }
            InputPart::Binary {
                data,
                mime_type,
                name,
            } => {
                if let Err(problem) = decode(data, limits.max_binary_bytes) {
                    errors.push(field_error(format!("input[{i}].data"), problem));
                }
                if !is_mime_type(mime_type) {
                    errors.push(field_error(
                        format!("input[{i}].mime_type"),
                        "must be of the form type/subtype, e.g. image/png",
                    ));
                }
                if let Some(problem) = name.as_deref().and_then(name_problem) {
                    errors.push(field_error(format!("input[{i}].name"), problem));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Where a run's input attachments are saved.
pub fn run_uploads(session_id: &SessionId) -> String {
    format!(".uploads/{session_id}")
}

/// Where one steer's attachments are saved: a directory of its own under the run's, so
/// its names never replace the run's input files or another steer's.
pub fn steer_uploads(session_id: &SessionId) -> String {
    format!(
        ".uploads/{session_id}/steer-{}",
        uuid::Uuid::now_v7().simple()
    )
}

/// Builds the user message once the environment is open: saves binaries and downloads
/// into `dir` in the workspace, checks attached files, and notes each attachment for the
/// model. Every part is tried, so all failures are reported at once; files saved before
/// a failure stay in the workspace.
pub async fn materialize(
    parts: Vec<InputPart>,
    workspace: &dyn Workspace,
    downloader: &dyn Downloader,
    dir: String,
    limits: &InputLimits,
) -> Result<Materialized, Vec<FieldError>> {
    let mut run = Materializer {
        workspace,
        downloader,
        limits,
        dir,
        parts: Vec::new(),
        texts: Vec::new(),
        attachments: Vec::new(),
        names: HashSet::new(),
    };
    let mut errors = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let done = match part {
            InputPart::Text { text } => {
                run.text(text);
                Ok(())
            }
            InputPart::Url { url } if image_type(url_path(&url)).is_some() => {
                run.image_url(url);
                Ok(())
            }
            InputPart::Url { url } => run.download(i, url).await,
            InputPart::File { path } => run.file(i, path).await,
            InputPart::Binary {
                data,
                mime_type,
                name,
            } => run.binary(i, &data, mime_type, name).await,
        };
        if let Err(e) = done {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(run.finish())
    } else {
        Err(errors)
    }
}

/// The message under construction.
struct Materializer<'a> {
    workspace: &'a dyn Workspace,
    downloader: &'a dyn Downloader,
    limits: &'a InputLimits,
    /// `.uploads/<session_id>`, or a steer's directory under it.
    dir: String,
    parts: Vec<UserPart>,
    /// The caller's own words, for the display text.
    texts: Vec<String>,
    /// One display line per attachment.
    attachments: Vec<String>,
    /// Names already saved in `dir` by this run.
    names: HashSet<String>,
}

impl Materializer<'_> {
    /// Blank parts are dropped: providers reject empty text blocks.
    fn text(&mut self, text: String) {
        if text.trim().is_empty() {
            return;
        }
        self.parts.push(UserPart::Text { text: text.clone() });
        self.texts.push(text);
    }

    /// Vision models fetch image URLs themselves; downloading would only cost time.
    fn image_url(&mut self, url: String) {
        self.attachments.push(format!("[image: {url}]"));
        self.parts.push(UserPart::Image {
            url: Some(url),
            data: None,
            mime_type: None,
        });
    }

    async fn download(&mut self, i: usize, url: String) -> Result<(), FieldError> {
        let got = self
            .downloader
            .download(&url, self.limits.max_download_bytes)
            .await
            .map_err(|e| field_error(format!("input[{i}].url"), download_problem(&e)))?;
        let fallback = match got.mime_type.as_deref().and_then(extension_for) {
            Some(ext) => format!("download-{i}.{ext}"),
            None => format!("download-{i}"),
        };
        let name = self.claim_name(got.file_name.as_deref(), fallback, i);
        let size = got.bytes.len();
        let path = self.save(i, &name, got.bytes).await?;
        let kind = got.mime_type.as_deref().unwrap_or("unknown type");
        self.parts.push(text_part(format!(
            "[The user attached {url}; it was saved as {path} ({kind}, {size} bytes).]"
        )));
        self.attachments.push(format!("[attachment: {url}]"));
        Ok(())
    }

    async fn file(&mut self, i: usize, path: String) -> Result<(), FieldError> {
        let field = format!("input[{i}].path");
        let info = self
            .workspace
            .stat(&path)
            .await
            .map_err(|e| field_error(&field, file_problem(&e)))?;
        if info.is_dir {
            return Err(field_error(field, "is a directory, not a file"));
        }
        // Larger images stay files only: the model can still open them with its tools. The
        // read is capped like a binary part, also for a file that grew since the stat.
        let cap = self.limits.max_binary_bytes as u64;
        let image = match image_type(&path) {
            Some(mime_type) if info.size <= cap => {
                match self.workspace.read_capped(&path, cap).await {
                    Ok(bytes) => Some(inline_image(&bytes, mime_type)),
                    Err(WorkspaceError::TooLarge { .. }) => None,
                    Err(e) => return Err(field_error(&field, file_problem(&e))),
                }
            }
            _ => None,
        };
        self.parts.push(text_part(format!(
            "[The user attached the file {path} ({} bytes).]",
            info.size
        )));
        self.parts.extend(image);
        self.attachments.push(format!("[attachment: {path}]"));
        Ok(())
    }

    async fn binary(
        &mut self,
        i: usize,
        data: &str,
        mime_type: String,
        name: Option<String>,
    ) -> Result<(), FieldError> {
        let bytes = decode(data, self.limits.max_binary_bytes)
            .map_err(|problem| field_error(format!("input[{i}].data"), problem))?;
        let ext = extension_for(&mime_type).unwrap_or("bin");
        let saved = self.claim_name(name.as_deref(), format!("upload-{i}.{ext}"), i);
        let shown = name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| saved.clone());
        let size = bytes.len();
        let image = inline_type(&mime_type).map(|m| inline_image(&bytes, m));
        let path = self.save(i, &saved, bytes).await?;
        self.parts.push(text_part(format!(
            "[The user attached {shown} ({mime_type}, {size} bytes), saved as {path}.]"
        )));
        self.parts.extend(image);
        self.attachments.push(format!("[attachment: {path}]"));
        Ok(())
    }

    /// A safe, unused name in the upload directory: `wanted` sanitised, or `fallback` when
    /// nothing recognisable is left of it, with `-<i>` added when an earlier part of this
    /// turn took it.
    fn claim_name(&mut self, wanted: Option<&str>, fallback: String, i: usize) -> String {
        let base = wanted
            .map(sanitize)
            .filter(|n| n.bytes().any(|b| b.is_ascii_alphanumeric()))
            .unwrap_or(fallback);
        let mut name = base.clone();
        let mut attempt = 0;
        while self.names.contains(&name) {
            attempt += 1;
            let tag = if attempt == 1 {
                format!("{i}")
            } else {
                format!("{i}-{attempt}")
            };
            name = with_suffix(&base, &tag);
        }
        self.names.insert(name.clone());
        name
    }

    async fn save(&self, i: usize, name: &str, bytes: Vec<u8>) -> Result<String, FieldError> {
        let path = format!("{}/{name}", self.dir);
        self.workspace.write(&path, bytes).await.map_err(|e| {
            field_error(
                format!("input[{i}]"),
                format!("could not be saved in the environment: {e}"),
            )
        })?;
        Ok(path)
    }

    fn finish(self) -> Materialized {
        let mut display_text = self.texts.join("\n\n");
        if !self.attachments.is_empty() {
            if !display_text.is_empty() {
                display_text.push_str("\n\n");
            }
            display_text.push_str(&self.attachments.join("\n"));
        }
        Materialized {
            parts: self.parts,
            display_text,
        }
    }
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn text_part(text: String) -> UserPart {
    UserPart::Text { text }
}

fn inline_image(bytes: &[u8], mime_type: &str) -> UserPart {
    UserPart::Image {
        url: None,
        data: Some(STANDARD.encode(bytes)),
        mime_type: Some(mime_type.to_owned()),
    }
}

fn is_blank_text(part: &InputPart) -> bool {
    matches!(part, InputPart::Text { text } if text.trim().is_empty())
}

/// Decodes base64 no larger than `max` bytes, refusing oversize data before allocating.
fn decode(data: &str, max: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("decodes to more than {max} bytes");
    // The estimate exceeds the real length by at most 2 bytes.
    if base64::decoded_len_estimate(data.len()).saturating_sub(2) > max {
        return Err(too_large());
    }
    let bytes = BASE64_IN
        .decode(data)
        .map_err(|e| format!("is not valid base64: {e}"))?;
    if bytes.len() > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The rest of an http(s) URL after `://`.
fn strip_http_scheme(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(rest)
}

/// A scheme and host check only: the downloader parses properly, and a URL that passes
/// here but fails there is reported then, on the same field.
fn url_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = strip_http_scheme(url) else {
        return Some("must be an http or https URL");
    };
    if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) {
        return Some("has no host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters");
    }
    None
}

/// The path of an http(s) URL without query and fragment; empty for anything else.
fn url_path(url: &str) -> &str {
    strip_http_scheme(url)
        .and_then(|rest| rest.split(['?', '#']).next())
        .and_then(|rest| rest.split_once('/'))
        .map_or("", |(_, path)| path)
}

/// The inline MIME type of an image, by the extension of the last path segment.
fn image_type(path: &str) -> Option<&'static str> {
    let file = path.rsplit('/').next()?;
    let (_, ext) = file.rsplit_once('.')?;
    IMAGE_EXTENSIONS
        .iter()
        .find(|(e, _)| ext.eq_ignore_ascii_case(e))
        .map(|(_, mime)| *mime)
}

/// The canonical MIME type when a binary part is an image the model can be shown.
fn inline_type(mime_type: &str) -> Option<&'static str> {
    let lower = mime_type.to_ascii_lowercase();
    let canonical = if lower == "image/jpg" {
        "image/jpeg"
    } else {
        lower.as_str()
    };
    IMAGE_EXTENSIONS
        .iter()
        .find(|(_, mime)| *mime == canonical)
        .map(|(_, mime)| *mime)
}

fn extension_for(mime_type: &str) -> Option<&'static str> {
    EXTENSIONS
        .iter()
        .find(|(mime, _)| mime_type.eq_ignore_ascii_case(mime))
        .map(|(_, ext)| *ext)
}

/// `type/subtype` made of RFC 9110 token characters, no parameters.
fn is_mime_type(mime_type: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    matches!(mime_type.split_once('/'), Some((t, sub)) if token(t) && token(sub))
}

fn name_problem(name: &str) -> Option<String> {
    if name.contains(['/', '\\', '\0']) || name.contains("..") {
        return Some("must be a plain file name, without '/', '\\', '..' or NUL".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "is {} bytes; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    None
}

/// Keeps `[A-Za-z0-9._-]`, so a name means the same in every shell and file system, and
/// drops leading dots, so nothing saved is hidden. May return an empty string.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.len() <= MAX_SAVED_NAME_BYTES {
        return cleaned.to_owned();
    }
    // All ASCII by now, so byte counts are character counts.
    match cleaned.rsplit_once('.') {
        Some((stem, ext)) if ext.len() < 16 => {
            let keep = MAX_SAVED_NAME_BYTES - ext.len() - 1;
            format!("{}.{ext}", stem.chars().take(keep).collect::<String>())
        }
        _ => cleaned.chars().take(MAX_SAVED_NAME_BYTES).collect(),
    }
}

/// `report.pdf` + `3` → `report-3.pdf`.
fn with_suffix(name: &str, tag: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{tag}.{ext}"),
        _ => format!("{name}-{tag}"),
    }
}

/// The port's text as it is: it is coarse on purpose, so a caller cannot probe the network
/// behind the service through the reasons a URL failed.
fn download_problem(e: &DownloadError) -> String {
    e.to_string()
}

fn file_problem(e: &WorkspaceError) -> String {
    match e {
        WorkspaceError::NotFound(_) | WorkspaceError::NotADirectory(_) => {
            "no such file in the environment".to_owned()
        }
        WorkspaceError::OutsideAllowed(_) => "outside the allowed paths".to_owned(),
        WorkspaceError::IsADirectory(_) => "is a directory, not a file".to_owned(),
        WorkspaceError::Io(message) => format!("cannot be read: {message}"),
        WorkspaceError::AlreadyExists(_)
        | WorkspaceError::InvalidPattern(_)
        | WorkspaceError::TooLarge { .. } => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ports::mocks::{MockDownloader, MockWorkspace};
    use ports::{Downloaded, FileInfo};

    use super::*;

    const SID: &str = "s1";

    fn text(t: &str) -> InputPart {
        InputPart::Text { text: t.into() }
    }

    fn url(u: &str) -> InputPart {
        InputPart::Url { url: u.into() }
    }

    fn file(p: &str) -> InputPart {
        InputPart::File { path: p.into() }
    }

    fn binary(data: &str, mime_type: &str, name: Option<&str>) -> InputPart {
        InputPart::Binary {
            data: data.into(),
            mime_type: mime_type.into(),
            name: name.map(Into::into),
        }
    }

    fn fe(field: &str, message: &str) -> FieldError {
        field_error(field, message)
    }

    fn user_text(t: &str) -> UserPart {
        UserPart::Text { text: t.into() }
    }

    fn inline(data: &str, mime_type: &str) -> UserPart {
        UserPart::Image {
            url: None,
            data: Some(data.into()),
            mime_type: Some(mime_type.into()),
        }
    }

    fn errors_of(parts: &[InputPart], limits: &InputLimits) -> Vec<FieldError> {
        validate(parts, limits).unwrap_err()
    }

    fn defaults() -> InputLimits {
        InputLimits::default()
    }

    // ---- validate ----

    #[test]
    fn default_limits_are_the_documented_ones() {
        assert_eq!(
            defaults(),
            InputLimits {
                max_parts: 32,
                max_text_bytes: 1024 * 1024,
                max_binary_bytes: 8 * 1024 * 1024,
                max_download_bytes: 20 * 1024 * 1024,
            }
        );
    }

    #[test]
    fn empty_list_is_empty_input() {
        assert_eq!(
            errors_of(&[], &defaults()),
            vec![fe("input", "input is empty")]
        );
    }

    #[test]
    fn only_blank_text_is_empty_input() {
        for parts in [
            vec![text("")],
            vec![text(" \n\t")],
            vec![text(""), text("  ")],
        ] {
            assert_eq!(
                errors_of(&parts, &defaults()),
                vec![fe("input", "input is empty")],
                "{parts:?}"
            );
        }
    }

    #[test]
    fn blank_text_beside_other_parts_is_fine() {
        let parts = [text(""), file("a.txt"), text("  ")];
        assert_eq!(validate(&parts, &defaults()), Ok(()));
    }

    #[test]
    fn more_than_max_parts_is_refused_alone() {
        let limits = InputLimits {
            max_parts: 2,
            ..defaults()
        };
        assert_eq!(validate(&[text("a"), text("b")], &limits), Ok(()));
        // The bad URL is not reported: the count already refuses the request.
        let parts = [text("a"), text("b"), url("ftp://x/y")];
        assert_eq!(
            errors_of(&parts, &limits),
            vec![fe("input", "has 3 parts; at most 2 are allowed")]
        );
    }

    #[test]
    fn text_over_max_text_bytes_is_refused() {
        let limits = InputLimits {
            max_text_bytes: 4,
            ..defaults()
        };
        assert_eq!(validate(&[text("abcd")], &limits), Ok(()));
        // Bytes, not characters: "é" is two.
        assert_eq!(
            errors_of(&[text("ok"), text("abcé")], &limits),
            vec![fe("input[1].text", "is 5 bytes; at most 4 are allowed")]
        );
    }

    #[test]
    fn url_must_be_http_or_https_with_a_host() {
        let cases = [
            ("ftp://example.com/a.txt", "must be an http or https URL"),
            ("file:///etc/passwd", "must be an http or https URL"),
            ("example.com/a.txt", "must be an http or https URL"),
            ("", "must be an http or https URL"),
            ("javascript:alert(1)", "must be an http or https URL"),
            ("http://", "has no host"),
            ("https:///path", "has no host"),
            ("https://?q", "has no host"),
            (
                "https://example.com/a b",
                "must not contain spaces or control characters",
            ),
        ];
        for (u, message) in cases {
            assert_eq!(
                errors_of(&[url(u)], &defaults()),
                vec![fe("input[0].url", message)],
                "{u}"
            );
        }
        for u in [
            "http://localhost:8080",
            "HTTPS://example.com/a.png?x=1#y",
            "https://user@example.com/",
        ] {
            assert_eq!(validate(&[url(u)], &defaults()), Ok(()), "{u}");
        }
    }

    #[test]
    fn file_path_must_not_be_empty() {
        for p in ["", "   "] {
            assert_eq!(
                errors_of(&[file(p)], &defaults()),
                vec![fe("input[0].path", "must not be empty")],
                "{p:?}"
            );
        }
        assert_eq!(validate(&[file("src/main.rs")], &defaults()), Ok(()));
    }

    #[test]
    fn binary_data_must_be_standard_base64() {
        let errors = errors_of(&[binary("not base64!", "text/plain", None)], &defaults());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "input[0].data");
        assert!(
            errors[0].message.starts_with("is not valid base64"),
            "{errors:?}"
        );
        // The URL-safe alphabet is not the standard one.
        assert_eq!(
            errors_of(&[binary("-_-_", "text/plain", None)], &defaults())[0].field,
            "input[0].data"
        );
        // Padded, unpadded and empty data are all fine.
        for data in ["aGk=", "aGk", ""] {
            assert_eq!(
                validate(&[binary(data, "text/plain", None)], &defaults()),
                Ok(()),
                "{data}"
            );
        }
    }

    #[test]
    fn binary_over_max_binary_bytes_decoded_is_refused() {
        let limits = InputLimits {
            max_binary_bytes: 4,
            ..defaults()
        };
        // "AQIDBA==" is 4 bytes, "AQIDBAU=" 5.
        assert_eq!(
            validate(&[binary("AQIDBA==", "x/y", None)], &limits),
            Ok(())
        );
        assert_eq!(
            errors_of(&[binary("AQIDBAU=", "x/y", None)], &limits),
            vec![fe("input[0].data", "decodes to more than 4 bytes")]
        );
        // Far too long is refused by length alone, before decoding finds the bad bytes.
        assert_eq!(
            errors_of(&[binary(&"!".repeat(100), "x/y", None)], &limits),
            vec![fe("input[0].data", "decodes to more than 4 bytes")]
        );
    }

    #[test]
    fn binary_mime_type_must_be_type_slash_subtype() {
        for bad in [
            "",
            "image",
            "/png",
            "image/",
            "image/png; charset=x",
            "a/b/c",
            "image /png",
        ] {
            assert_eq!(
                errors_of(&[binary("", bad, None)], &defaults()),
                vec![fe(
                    "input[0].mime_type",
                    "must be of the form type/subtype, e.g. image/png"
                )],
                "{bad:?}"
            );
        }
        for good in [
            "image/png",
            "image/svg+xml",
            "application/vnd.ms-excel",
            "Text/Plain",
        ] {
            assert_eq!(
                validate(&[binary("", good, None)], &defaults()),
                Ok(()),
                "{good}"
            );
        }
    }

    #[test]
    fn binary_name_must_be_a_plain_short_file_name() {
        let plain = "must be a plain file name, without '/', '\\', '..' or NUL";
        for bad in ["a/b.txt", "a\\b.txt", "..", "../x", "x..y", "a\0b"] {
            assert_eq!(
                errors_of(&[binary("", "text/plain", Some(bad))], &defaults()),
                vec![fe("input[0].name", plain)],
                "{bad:?}"
            );
        }
        assert_eq!(
            errors_of(
                &[binary("", "text/plain", Some(&"n".repeat(256)))],
                &defaults()
            ),
            vec![fe("input[0].name", "is 256 bytes; at most 255 are allowed")]
        );
        for good in ["report.pdf", "my photo (1).JPG", &"n".repeat(255)] {
            assert_eq!(
                validate(&[binary("", "text/plain", Some(good))], &defaults()),
                Ok(()),
                "{good}"
            );
        }
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_path() {
        let parts = [
            text("hello"),
            url("ftp://x"),
            file(""),
            binary("aGk", "text/plain", Some("ok.txt")),
            binary("%%%", "png", Some("a/b")),
        ];
        let errors = errors_of(&parts, &defaults());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "input[1].url",
                "input[2].path",
                "input[4].data",
                "input[4].mime_type",
                "input[4].name",
            ]
        );
    }

    // ---- materialize ----

    type Writes = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    type MakeDownloadError = fn() -> DownloadError;
    type MakeWorkspaceError = fn(String) -> WorkspaceError;

    /// A workspace that records every write and succeeds.
    fn recording_workspace() -> (MockWorkspace, Writes) {
        let writes: Writes = Arc::default();
        let mut ws = MockWorkspace::new();
        let log = Arc::clone(&writes);
        ws.expect_write().returning(move |path, contents| {
            log.lock().unwrap().push((path.to_owned(), contents));
            Ok(())
        });
        (ws, writes)
    }

    fn written(writes: &Writes) -> Vec<(String, Vec<u8>)> {
        writes.lock().unwrap().clone()
    }

    /// Expects exactly one download of `expected` with the default cap.
    fn downloader_returning(
        expected: &'static str,
        result: impl Fn() -> Result<Downloaded, DownloadError> + Send + 'static,
    ) -> MockDownloader {
        let mut d = MockDownloader::new();
        d.expect_download()
            .withf(move |u, max| u == expected && *max == 20 * 1024 * 1024)
            .times(1)
            .returning(move |_, _| result());
        d
    }

    async fn run(
        parts: Vec<InputPart>,
        ws: &MockWorkspace,
        d: &MockDownloader,
    ) -> Result<Materialized, Vec<FieldError>> {
        materialize(parts, ws, d, run_uploads(&SID.into()), &defaults()).await
    }

    fn stat_ok(ws: &mut MockWorkspace, expected: &'static str, size: u64, is_dir: bool) {
        ws.expect_stat()
            .withf(move |p| p == expected)
            .times(1)
            .returning(move |_| Ok(FileInfo { is_dir, size }));
    }

    #[tokio::test]
    async fn text_parts_keep_order_unmerged_and_blank_ones_are_dropped() {
        let got = run(
            vec![text("first"), text("second"), text("  "), text("third")],
            &MockWorkspace::new(),
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            Materialized {
                parts: vec![user_text("first"), user_text("second"), user_text("third")],
                display_text: "first\n\nsecond\n\nthird".into(),
            }
        );
    }

    #[tokio::test]
    async fn image_url_goes_to_the_model_without_downloading() {
        let image = "https://example.com/img/Cat.JPG?size=2#top";
        let got = run(
            vec![text("look"), url(image)],
            &MockWorkspace::new(),
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            Materialized {
                parts: vec![
                    user_text("look"),
                    UserPart::Image {
                        url: Some(image.into()),
                        data: None,
                        mime_type: None,
                    },
                ],
                display_text: format!("look\n\n[image: {image}]"),
            }
        );
    }

    #[tokio::test]
    async fn image_extension_only_in_the_query_or_host_is_downloaded() {
        let (ws, writes) = recording_workspace();
        let mut d = MockDownloader::new();
        d.expect_download().times(2).returning(|_, _| {
            Ok(Downloaded {
                bytes: b"x".to_vec(),
                mime_type: None,
                file_name: None,
                final_url: "https://example.org/x".into(),
            })
        });
        let got = run(
            vec![
                url("https://example.com/view?file=a.png"),
                url("https://pics.png"),
            ],
            &ws,
            &d,
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![
                (".uploads/s1/download-0".to_owned(), b"x".to_vec()),
                (".uploads/s1/download-1".to_owned(), b"x".to_vec()),
            ]
        );
        assert_eq!(got.parts.len(), 2);
    }

    #[tokio::test]
    async fn other_url_is_downloaded_saved_and_announced() {
        let (ws, writes) = recording_workspace();
        let d = downloader_returning("https://example.com/docs/My Report.pdf", || {
            Ok(Downloaded {
                bytes: b"%PDF-1.7".to_vec(),
                mime_type: Some("application/pdf".into()),
                file_name: Some("My Report.pdf".into()),
                final_url: "https://example.org/x".into(),
            })
        });
        let got = run(
            vec![
                text("summarise"),
                url("https://example.com/docs/My Report.pdf"),
            ],
            &ws,
            &d,
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![(".uploads/s1/My_Report.pdf".to_owned(), b"%PDF-1.7".to_vec())]
        );
        assert_eq!(
            got,
            Materialized {
                parts: vec![
                    user_text("summarise"),
                    user_text(
                        "[The user attached https://example.com/docs/My Report.pdf; it was \
                         saved as .uploads/s1/My_Report.pdf (application/pdf, 8 bytes).]"
                    ),
                ],
                display_text: "summarise\n\n[attachment: https://example.com/docs/My Report.pdf]"
                    .into(),
            }
        );
    }

    #[tokio::test]
    async fn download_without_usable_name_is_named_by_index_and_type() {
        let (ws, writes) = recording_workspace();
        let mut d = MockDownloader::new();
        d.expect_download()
            .withf(|u, _| u == "https://a.example/")
            .returning(|_, _| {
                Ok(Downloaded {
                    bytes: b"abc".to_vec(),
                    mime_type: None,
                    file_name: None,
                    final_url: "https://example.org/x".into(),
                })
            });
        d.expect_download()
            .withf(|u, _| u == "https://b.example/...")
            .returning(|_, _| {
                Ok(Downloaded {
                    bytes: b"hi".to_vec(),
                    mime_type: Some("text/plain".into()),
                    file_name: Some("...".into()),
                    final_url: "https://example.org/x".into(),
                })
            });
        let got = run(
            vec![url("https://a.example/"), url("https://b.example/...")],
            &ws,
            &d,
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![
                (".uploads/s1/download-0".to_owned(), b"abc".to_vec()),
                (".uploads/s1/download-1.txt".to_owned(), b"hi".to_vec()),
            ]
        );
        assert_eq!(
            got.parts,
            vec![
                user_text(
                    "[The user attached https://a.example/; it was saved as \
                     .uploads/s1/download-0 (unknown type, 3 bytes).]"
                ),
                user_text(
                    "[The user attached https://b.example/...; it was saved as \
                     .uploads/s1/download-1.txt (text/plain, 2 bytes).]"
                ),
            ]
        );
        assert_eq!(
            got.display_text,
            "[attachment: https://a.example/]\n[attachment: https://b.example/...]"
        );
    }

    #[tokio::test]
    async fn download_failures_are_field_errors_with_the_reason() {
        let cases: [(MakeDownloadError, &str); 2] = [
            (|| DownloadError::Unavailable, "could not be downloaded"),
            (
                || DownloadError::TooLarge(20 * 1024 * 1024),
                "the resource is larger than 20971520 bytes",
            ),
        ];
        for (make, message) in cases {
            let d = downloader_returning("https://example.com/a.zip", move || Err(make()));
            let errors = run(
                vec![text("hi"), url("https://example.com/a.zip")],
                &MockWorkspace::new(),
                &d,
            )
            .await
            .unwrap_err();
            assert_eq!(errors, vec![fe("input[1].url", message)]);
        }
    }

    #[tokio::test]
    async fn failed_write_is_a_field_error_on_the_part() {
        let mut ws = MockWorkspace::new();
        ws.expect_write()
            .returning(|p, _| Err(WorkspaceError::Io(format!("disk full: {p}"))));
        let errors = run(
            vec![binary("aGk=", "text/plain", Some("a.txt"))],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            errors,
            vec![fe(
                "input[0]",
                "could not be saved in the environment: I/O error: disk full: .uploads/s1/a.txt"
            )]
        );
    }

    #[tokio::test]
    async fn file_is_checked_and_announced_without_reading() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "src/main.rs", 42, false);
        let got = run(
            vec![text("fix it"), file("src/main.rs")],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            Materialized {
                parts: vec![
                    user_text("fix it"),
                    user_text("[The user attached the file src/main.rs (42 bytes).]"),
                ],
                display_text: "fix it\n\n[attachment: src/main.rs]".into(),
            }
        );
    }

    #[tokio::test]
    async fn image_file_is_read_and_inlined_after_its_note() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "shots/a.PNG", 3, false);
        ws.expect_read_capped()
            .withf(|p, max| p == "shots/a.PNG" && *max == 8 * 1024 * 1024)
            .times(1)
            .returning(|_, _| Ok(vec![1, 2, 3]));
        let got = run(vec![file("shots/a.PNG")], &ws, &MockDownloader::new())
            .await
            .unwrap();
        assert_eq!(
            got,
            Materialized {
                parts: vec![
                    user_text("[The user attached the file shots/a.PNG (3 bytes).]"),
                    inline("AQID", "image/png"),
                ],
                display_text: "[attachment: shots/a.PNG]".into(),
            }
        );
    }

    #[tokio::test]
    async fn image_file_over_the_binary_cap_is_not_inlined() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "big.jpg", 5, false);
        let limits = InputLimits {
            max_binary_bytes: 4,
            ..defaults()
        };
        let got = materialize(
            vec![file("big.jpg")],
            &ws,
            &MockDownloader::new(),
            run_uploads(&SID.into()),
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(
            got.parts,
            vec![user_text("[The user attached the file big.jpg (5 bytes).]")]
        );
    }

    #[tokio::test]
    async fn an_image_file_that_grew_past_the_cap_is_not_read_whole() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "grows.png", 3, false);
        ws.expect_read_capped()
            .withf(|_, max| *max == 4)
            .times(1)
            .returning(|p, max| {
                Err(WorkspaceError::TooLarge {
                    path: p.to_owned(),
                    max,
                })
            });
        let limits = InputLimits {
            max_binary_bytes: 4,
            ..defaults()
        };
        let got = materialize(
            vec![file("grows.png")],
            &ws,
            &MockDownloader::new(),
            run_uploads(&SID.into()),
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(
            got.parts,
            vec![user_text(
                "[The user attached the file grows.png (3 bytes).]"
            )],
            "attached as a file, not inlined"
        );
    }

    #[tokio::test]
    async fn unusable_files_are_readable_field_errors() {
        let cases: [(MakeWorkspaceError, &str); 5] = [
            (WorkspaceError::NotFound, "no such file in the environment"),
            (
                WorkspaceError::NotADirectory,
                "no such file in the environment",
            ),
            (WorkspaceError::OutsideAllowed, "outside the allowed paths"),
            (WorkspaceError::IsADirectory, "is a directory, not a file"),
            (
                |_| WorkspaceError::Io("EACCES".into()),
                "cannot be read: EACCES",
            ),
        ];
        for (make, message) in cases {
            let mut ws = MockWorkspace::new();
            ws.expect_stat().returning(move |p| Err(make(p.to_owned())));
            let errors = run(
                vec![text("x"), file("../etc/passwd")],
                &ws,
                &MockDownloader::new(),
            )
            .await
            .unwrap_err();
            assert_eq!(errors, vec![fe("input[1].path", message)]);
        }
    }

    #[tokio::test]
    async fn directory_is_not_a_file() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "src", 0, true);
        let errors = run(vec![file("src")], &ws, &MockDownloader::new())
            .await
            .unwrap_err();
        assert_eq!(
            errors,
            vec![fe("input[0].path", "is a directory, not a file")]
        );
    }

    #[tokio::test]
    async fn unreadable_image_file_is_a_field_error() {
        let mut ws = MockWorkspace::new();
        stat_ok(&mut ws, "a.gif", 3, false);
        ws.expect_read_capped()
            .returning(|p, _| Err(WorkspaceError::NotFound(p.to_owned())));
        let errors = run(vec![file("a.gif")], &ws, &MockDownloader::new())
            .await
            .unwrap_err();
        assert_eq!(
            errors,
            vec![fe("input[0].path", "no such file in the environment")]
        );
    }

    #[tokio::test]
    async fn binary_image_is_saved_announced_and_inlined() {
        let (ws, writes) = recording_workspace();
        let got = run(
            vec![
                text("what is this?"),
                binary("AQID", "image/png", Some("shot.png")),
            ],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![(".uploads/s1/shot.png".to_owned(), vec![1, 2, 3])]
        );
        assert_eq!(
            got,
            Materialized {
                parts: vec![
                    user_text("what is this?"),
                    user_text(
                        "[The user attached shot.png (image/png, 3 bytes), saved as \
                         .uploads/s1/shot.png.]"
                    ),
                    inline("AQID", "image/png"),
                ],
                display_text: "what is this?\n\n[attachment: .uploads/s1/shot.png]".into(),
            }
        );
    }

    #[tokio::test]
    async fn unnamed_binaries_are_named_by_index_and_type() {
        let (ws, writes) = recording_workspace();
        let got = run(
            vec![
                binary("aGk", "application/pdf", None),
                binary("aGk=", "application/x-thing", Some("  ")),
                binary("AQID", "image/JPG", None),
            ],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![
                (".uploads/s1/upload-0.pdf".to_owned(), b"hi".to_vec()),
                (".uploads/s1/upload-1.bin".to_owned(), b"hi".to_vec()),
                (".uploads/s1/upload-2.jpg".to_owned(), vec![1, 2, 3]),
            ]
        );
        assert_eq!(
            got.parts,
            vec![
                user_text(
                    "[The user attached upload-0.pdf (application/pdf, 2 bytes), saved as \
                     .uploads/s1/upload-0.pdf.]"
                ),
                user_text(
                    "[The user attached upload-1.bin (application/x-thing, 2 bytes), saved \
                     as .uploads/s1/upload-1.bin.]"
                ),
                user_text(
                    "[The user attached upload-2.jpg (image/JPG, 3 bytes), saved as \
                     .uploads/s1/upload-2.jpg.]"
                ),
                // `image/jpg` is common enough to be shown, as the canonical type.
                inline("AQID", "image/jpeg"),
            ]
        );
        assert_eq!(
            got.display_text,
            "[attachment: .uploads/s1/upload-0.pdf]\n[attachment: .uploads/s1/upload-1.bin]\n\
             [attachment: .uploads/s1/upload-2.jpg]"
        );
    }

    #[tokio::test]
    async fn images_models_reject_are_saved_but_not_inlined() {
        let (ws, writes) = recording_workspace();
        let got = run(
            vec![binary("PHN2Zy8+", "image/svg+xml", Some("logo.svg"))],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            written(&writes),
            vec![(".uploads/s1/logo.svg".to_owned(), b"<svg/>".to_vec())]
        );
        assert_eq!(
            got.parts,
            vec![user_text(
                "[The user attached logo.svg (image/svg+xml, 6 bytes), saved as \
                 .uploads/s1/logo.svg.]"
            )]
        );
    }

    #[tokio::test]
    async fn binary_names_are_sanitised_and_kept_apart() {
        let (ws, writes) = recording_workspace();
        let got = run(
            vec![
                binary("aGk=", "text/plain", Some("my notes (1).txt")),
                binary("aGk=", "text/plain", Some(".env")),
                binary("aGk=", "text/plain", Some("my notes (1).txt")),
                binary("aGk=", "text/plain", Some("报告")),
            ],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        let paths: Vec<String> = written(&writes).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                ".uploads/s1/my_notes__1_.txt",
                ".uploads/s1/env",
                ".uploads/s1/my_notes__1_-2.txt",
                // Nothing recognisable is left: named as if unnamed.
                ".uploads/s1/upload-3.txt",
            ]
        );
        // The model is told the name the user gave as well as where it is.
        assert_eq!(
            got.parts[0],
            user_text(
                "[The user attached my notes (1).txt (text/plain, 2 bytes), saved as \
                 .uploads/s1/my_notes__1_.txt.]"
            )
        );
    }

    #[tokio::test]
    async fn undecodable_binary_is_a_field_error_even_unvalidated() {
        let errors = run(
            vec![binary("%%%", "text/plain", None)],
            &MockWorkspace::new(),
            &MockDownloader::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "input[0].data");
    }

    #[tokio::test]
    async fn mixed_parts_keep_caller_order_and_every_failure_is_reported() {
        let (mut ws, writes) = recording_workspace();
        stat_ok(&mut ws, "notes.md", 10, false);
        ws.expect_stat()
            .withf(|p| p == "gone.txt")
            .returning(|p| Err(WorkspaceError::NotFound(p.to_owned())));
        let d = downloader_returning("https://example.com/x.zip", || {
            Err(DownloadError::Unavailable)
        });
        let parts = vec![
            text("a"),
            url("https://example.com/x.zip"),
            file("notes.md"),
            file("gone.txt"),
            binary("aGk=", "text/plain", Some("b.txt")),
        ];
        let errors = run(parts, &ws, &d).await.unwrap_err();
        assert_eq!(
            errors,
            vec![
                fe("input[1].url", "could not be downloaded"),
                fe("input[3].path", "no such file in the environment"),
            ]
        );
        // Parts after a failure are still tried; their files stay in the workspace.
        assert_eq!(
            written(&writes),
            vec![(".uploads/s1/b.txt".to_owned(), b"hi".to_vec())]
        );
    }

    #[tokio::test]
    async fn display_text_lists_attachments_after_the_text_in_order() {
        let (mut ws, _writes) = recording_workspace();
        stat_ok(&mut ws, "notes.md", 10, false);
        let got = run(
            vec![
                url("https://example.com/a.webp"),
                text("one"),
                binary("aGk=", "text/plain", Some("b.txt")),
                file("notes.md"),
                text("two"),
            ],
            &ws,
            &MockDownloader::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            got.display_text,
            "one\n\ntwo\n\n[image: https://example.com/a.webp]\n\
             [attachment: .uploads/s1/b.txt]\n[attachment: notes.md]"
        );
        assert_eq!(got.parts.len(), 5);
        assert!(matches!(got.parts[0], UserPart::Image { .. }));
        assert_eq!(got.parts[1], user_text("one"));
        assert_eq!(got.parts[4], user_text("two"));
    }

    #[test]
    fn sanitize_keeps_safe_characters_and_length() {
        assert_eq!(sanitize("a-b_c.D9"), "a-b_c.D9");
        assert_eq!(sanitize("..hidden"), "hidden");
        assert_eq!(sanitize("a%20b"), "a_20b");
        assert_eq!(sanitize("..."), "");
        let long = format!("{}.pdf", "x".repeat(300));
        let cut = sanitize(&long);
        assert_eq!(cut.len(), MAX_SAVED_NAME_BYTES);
        assert!(cut.ends_with("x.pdf"), "{cut}");
        assert_eq!(sanitize(&"y".repeat(300)).len(), MAX_SAVED_NAME_BYTES);
    }
}
