//! Rendering a preset's system prompt (a minijinja template) at run start. The template
//! may come from a run's `config_override`, so it is hostile input: every render is
//! bounded in steps (fuel), output size and concurrency, and runs off the async workers.

use serde::Serialize;
use tokio::sync::Semaphore;

use super::limits;

/// What a system prompt template can use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PromptVars {
    /// The agent's working directory as its shell sees it.
    pub cwd: String,
    /// Today, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Now, RFC 3339 (UTC).
    pub datetime: String,
    /// Enabled toolset names.
    pub toolsets: Vec<String>,
    /// Names of the tools the agent has.
    pub tools: Vec<String>,
    pub model: String,
    pub preset_id: String,
    pub session_id: String,
    pub conversation_id: String,
}

/// Slots for renders running at once (see [`limits::TEMPLATE_RENDER_SLOTS`]).
static RENDER_SLOTS: Semaphore = Semaphore::const_new(limits::TEMPLATE_RENDER_SLOTS);

/// Renders `template` on a blocking thread, at most [`limits::TEMPLATE_RENDER_SLOTS`] at
/// once, so a hostile template never stalls the async workers (nor fills the blocking
/// pool). See [`render_now`] for the bounds.
///
/// # Errors
/// As [`render_now`].
pub async fn render(template: String, vars: PromptVars) -> Result<String, String> {
    let _slot = RENDER_SLOTS
        .acquire()
        .await
        .map_err(|e| format!("rendering is unavailable: {e}"))?;
    tokio::task::spawn_blocking(move || render_now(&template, &vars))
        .await
        .map_err(|e| format!("rendering failed: {e}"))?
}

/// Renders `template` with [`limits::TEMPLATE_FUEL`] and stops as soon as the output
/// passes [`limits::MAX_PROMPT_BYTES`]. Undefined variables render empty (minijinja's
/// lenient default), so a template written for a newer variable set still works.
/// Blocking: call [`render`] from async code.
///
/// # Errors
/// The template does not parse, fails while rendering, runs out of fuel or renders too
/// much; the message says which, and where.
pub fn render_now(template: &str, vars: &PromptVars) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(limits::TEMPLATE_FUEL));
    let tmpl = env.template_from_str(template).map_err(|e| e.to_string())?;
    let mut out = CappedOutput::new(limits::MAX_PROMPT_BYTES);
    let ctx = minijinja::Value::from(minijinja::value::Serde(vars));
    match tmpl.render_captured_to(ctx, &mut out) {
        Ok(_) => String::from_utf8(out.buf).map_err(|e| e.to_string()),
        Err(_) if out.over => Err(format!(
            "the template renders to more than {} bytes",
            limits::MAX_PROMPT_BYTES
        )),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(format!(
            "the template exceeds the step limit of a render ({} fuel): simplify its loops",
            limits::TEMPLATE_FUEL
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Collects output up to `cap` bytes; the write that would pass it fails, which stops the
/// render at once.
struct CappedOutput {
    buf: Vec<u8>,
    cap: usize,
    over: bool,
}

impl CappedOutput {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
            over: false,
        }
    }
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("output cap reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> PromptVars {
        PromptVars {
            cwd: "/srv/w".into(),
            date: "2026-11-25".into(),
            datetime: "2026-11-25T10:00:00Z".into(),
            toolsets: vec!["core".into(), "shell".into()],
            tools: vec!["view".into(), "shell".into()],
            model: "test:echo".into(),
            preset_id: "p".into(),
            session_id: "s".into(),
            conversation_id: "c".into(),
        }
    }

    #[test]
    fn variables_and_loops_render() {
        let out = render_now(
            "In {{ cwd }} on {{ date }}. Tools: {% for t in tools %}{{ t }}{% if not loop.last %}, {% endif %}{% endfor %}. {{ missing }}!",
            &vars(),
        )
        .unwrap();
        assert_eq!(out, "In /srv/w on 2026-11-25. Tools: view, shell. !");
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        assert!(render_now("{% for x in %}", &vars()).is_err());
        assert!(render_now("{{ 1 / 0 }}", &vars()).is_err());
    }

    #[test]
    fn a_template_that_would_run_for_minutes_runs_out_of_fuel() {
        let bomb = "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}\
            {% endfor %}{% endfor %}";
        let e = render_now(bomb, &vars()).unwrap_err();
        assert!(e.contains("step limit"), "{e}");
        // Building a huge value without output is bounded too.
        let e = render_now("{% set x = 'x' * 90000000 %}{{ x|length }}", &vars()).unwrap_err();
        assert!(e.contains("step limit"), "{e}");
    }

    #[test]
    fn output_stops_at_the_cap() {
        let exact = format!("{{{{ 'x' * {} }}}}", limits::MAX_PROMPT_BYTES);
        assert_eq!(
            render_now(&exact, &vars()).unwrap().len(),
            limits::MAX_PROMPT_BYTES
        );
        let over = format!("{{{{ 'x' * {} }}}}", limits::MAX_PROMPT_BYTES + 1);
        let e = render_now(&over, &vars()).unwrap_err();
        assert_eq!(e, "the template renders to more than 262144 bytes");
        // Many small writes, too.
        let e = render_now(
            "{% for a in range(3000) %}{{ 'x' * 100 }}{% endfor %}",
            &vars(),
        )
        .unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[tokio::test]
    async fn the_async_render_gives_the_same_answers() {
        assert_eq!(render("{{ cwd }}".into(), vars()).await.unwrap(), "/srv/w");
        let bombs = (0..8).map(|_| {
            render(
                "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
                    .into(),
                vars(),
            )
        });
        for result in futures::future::join_all(bombs).await {
            assert!(result.unwrap_err().contains("step limit"));
        }
    }
}
