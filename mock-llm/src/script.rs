//! The protocol-neutral description of one response. The server renders it into the wire
//! format of whichever endpoint was hit, so one script exercises both adapters.

use std::time::Duration;

/// One content step of a streamed answer; each becomes at least one wire frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Text(String),
    Thinking(String),
    /// Anthropic's signature closing a thinking block (not rendered for OpenAI).
    Signature(String),
    /// An Anthropic `redacted_thinking` block (not rendered for OpenAI).
    RedactedThinking(String),
    ToolStart {
        index: u32,
        id: String,
        name: String,
    },
    ToolArgs {
        index: u32,
        fragment: String,
    },
}

/// Token counts reported at the end (OpenAI: usage chunk; Anthropic: message_start and
/// message_delta).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tokens {
    /// Prompt tokens not read from or written to the cache (Anthropic's `input_tokens`).
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// What the response body is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    /// A streamed answer rendered in the endpoint's format.
    Stream {
        steps: Vec<Step>,
        tokens: Option<Tokens>,
        finish: Option<String>,
    },
    /// A non-200 answer with a JSON error body in the provider's shape.
    Error {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Bytes sent verbatim, one write per chunk, whatever the endpoint.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<Vec<u8>>,
    },
}

/// How the body stream ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    /// Every frame, including the protocol's terminator.
    Complete,
    /// Stop after `n` frames (`None`: after the last content frame) and close the body
    /// cleanly, without the terminator.
    Cut(Option<usize>),
    /// Stop after `n` frames and reset the connection (a transport error for the client).
    Abort(Option<usize>),
    /// Stop after `n` frames and then send nothing, ever.
    Hang(Option<usize>),
}

/// A scripted response. Build a streamed answer with [`Script::new`] and the content
/// methods, or use one of the error constructors or [`Script::raw`]. Content methods on an
/// error or raw script are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub(crate) content: Content,
    pub(crate) delay: Duration,
    pub(crate) end: End,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// An empty streamed answer (it still has the protocol's framing, finish and usage).
    pub fn new() -> Self {
        Self {
            content: Content::Stream {
                steps: Vec::new(),
                tokens: None,
                finish: None,
            },
            delay: Duration::ZERO,
            end: End::Complete,
        }
    }

    /// A streamed text answer split into `chunks` deltas.
    pub fn text(text: &str, chunks: usize) -> Self {
        Self::new().then_text(text, chunks)
    }

    /// An HTTP error with the provider's JSON error body.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            content: Content::Error {
                status,
                message: message.to_owned(),
                retry_after: None,
            },
            delay: Duration::ZERO,
            end: End::Complete,
        }
    }

    /// HTTP 429 with `Retry-After: <secs>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut script = Self::error(429, "Rate limit reached, please slow down");
        if let Content::Error { retry_after, .. } = &mut script.content {
            *retry_after = Some(retry_after_secs);
        }
        script
    }

    /// HTTP 500.
    pub fn server_error() -> Self {
        Self::error(500, "The server had an error while processing your request")
    }

    /// HTTP 400 with `message`.
    pub fn invalid_request(message: &str) -> Self {
        Self::error(400, message)
    }

    /// Status 200, `text/event-stream`, and `chunks` sent verbatim, one write each.
    pub fn raw<I, C>(chunks: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        Self {
            content: Content::Raw {
                status: 200,
                headers: vec![("content-type".into(), "text/event-stream".into())],
                chunks: chunks.into_iter().map(Into::into).collect(),
            },
            delay: Duration::ZERO,
            end: End::Complete,
        }
    }

    /// Raw mode: the status code to answer with.
    pub fn status(mut self, code: u16) -> Self {
        if let Content::Raw { status, .. } = &mut self.content {
            *status = code;
        }
        self
    }

    /// Raw mode: sets a response header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Content::Raw { headers, .. } = &mut self.content {
            let name = name.to_ascii_lowercase();
            headers.retain(|(n, _)| *n != name);
            headers.push((name, value.to_owned()));
        }
        self
    }

    fn step(mut self, step: Step) -> Self {
        if let Content::Stream { steps, .. } = &mut self.content {
            steps.push(step);
        }
        self
    }

    /// Appends `text` split into `chunks` deltas of near-equal length (by characters).
    pub fn then_text(self, text: &str, chunks: usize) -> Self {
        split(text, chunks)
            .into_iter()
            .fold(self, |s, part| s.step(Step::Text(part)))
    }

    /// Appends one text delta per element.
    pub fn text_deltas(self, deltas: &[&str]) -> Self {
        deltas
            .iter()
            .fold(self, |s, d| s.step(Step::Text((*d).to_owned())))
    }

    /// Appends a thinking block: one delta per element, then its signature (Anthropic
    /// only; OpenAI renders the deltas as `reasoning_content`).
    pub fn thinking(self, deltas: &[&str], signature: &str) -> Self {
        let s = deltas
            .iter()
            .fold(self, |s, d| s.step(Step::Thinking((*d).to_owned())));
        if signature.is_empty() {
            s
        } else {
            s.step(Step::Signature(signature.to_owned()))
        }
    }

    /// Appends an Anthropic `redacted_thinking` block.
    pub fn redacted_thinking(self, data: &str) -> Self {
        self.step(Step::RedactedThinking(data.to_owned()))
    }

    /// Appends a whole tool call: its start, then one argument fragment per element.
    pub fn tool_call(self, index: u32, id: &str, name: &str, fragments: &[&str]) -> Self {
        fragments
            .iter()
            .fold(self.tool_start(index, id, name), |s, f| {
                s.tool_args(index, f)
            })
    }

    /// Appends the start of tool call `index` (for interleaving parallel calls).
    pub fn tool_start(self, index: u32, id: &str, name: &str) -> Self {
        self.step(Step::ToolStart {
            index,
            id: id.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Appends an argument fragment of tool call `index`.
    pub fn tool_args(self, index: u32, fragment: &str) -> Self {
        self.step(Step::ToolArgs {
            index,
            fragment: fragment.to_owned(),
        })
    }

    /// The token counts to report (default: 10 input, one output per content step).
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        if let Content::Stream { tokens, .. } = &mut self.content {
            *tokens = Some(Tokens {
                input,
                output,
                cache_read: 0,
                cache_write: 0,
            });
        }
        self
    }

    /// Adds prompt-cache counts to the usage (set [`Self::usage`] first): Anthropic's
    /// `cache_read_input_tokens` and `cache_creation_input_tokens`; OpenAI's
    /// `prompt_tokens_details.cached_tokens` (its `prompt_tokens` then includes both).
    pub fn cache_usage(mut self, read: u64, write: u64) -> Self {
        if let Content::Stream {
            tokens: Some(tokens),
            ..
        } = &mut self.content
        {
            tokens.cache_read = read;
            tokens.cache_write = write;
        }
        self
    }

    /// The finish reason in OpenAI's words (`stop`, `tool_calls`, `length`), translated
    /// for Anthropic. Default: `tool_calls` when the script has a tool call, else `stop`.
    pub fn finish(mut self, reason: &str) -> Self {
        if let Content::Stream { finish, .. } = &mut self.content {
            *finish = Some(reason.to_owned());
        }
        self
    }

    /// Pause between frames (raw mode: between chunks).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Ends the body cleanly right after the last content frame, without finish, usage
    /// or terminator (raw mode: after every chunk).
    pub fn cut(mut self) -> Self {
        self.end = End::Cut(None);
        self
    }

    /// Resets the connection after the last content frame.
    pub fn abort(mut self) -> Self {
        self.end = End::Abort(None);
        self
    }

    /// Sends the headers and the content frames, then nothing ever again.
    pub fn hang(mut self) -> Self {
        self.end = End::Hang(None);
        self
    }

    /// Sends the headers and `frames` frames, then nothing ever again.
    pub fn hang_after(mut self, frames: usize) -> Self {
        self.end = End::Hang(Some(frames));
        self
    }
}

/// Splits `text` into `chunks` non-empty parts (fewer when the text is shorter).
fn split(text: &str, chunks: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chunks.clamp(1, chars.len().max(1));
    let (base, extra) = (chars.len() / n, chars.len() % n);
    let mut parts = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        parts.push(chars[at..at + len].iter().collect());
        at += len;
    }
    parts
}

/// The answer served when the queue is empty: `deltas` text deltas `delay` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefaultAnswer {
    pub deltas: usize,
    pub delay: Duration,
}

impl Default for DefaultAnswer {
    fn default() -> Self {
        Self {
            deltas: 5,
            delay: Duration::ZERO,
        }
    }
}

impl DefaultAnswer {
    /// The script it stands for: deltas `w0 `, `w1 `, … so the text is predictable.
    pub fn script(&self) -> Script {
        let words: Vec<String> = (0..self.deltas).map(|i| format!("w{i} ")).collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        Script::new().text_deltas(&refs).delay(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_text_in_order() {
        assert_eq!(split("Hello world", 3), ["Hell", "o wo", "rld"]);
        assert_eq!(split("ab", 5), ["a", "b"]);
        assert_eq!(split("", 3), [""]);
        assert_eq!(split("héllo", 2), ["hél", "lo"]);
    }
}
