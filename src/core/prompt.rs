//! Rendering a preset's system prompt (a minijinja template) at run start.

use serde::Serialize;

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

/// Renders `template`. Undefined variables render empty (minijinja's lenient default), so
/// a template written for a newer variable set still works.
///
/// # Errors
/// The template does not parse or fails while rendering; the message says where.
pub fn render(template: &str, vars: &PromptVars) -> Result<String, String> {
    let env = minijinja::Environment::new();
    let tmpl = env.template_from_str(template).map_err(|e| e.to_string())?;
    tmpl.render(minijinja::Value::from(minijinja::value::Serde(vars)))
        .map_err(|e| e.to_string())
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
        let out = render(
            "In {{ cwd }} on {{ date }}. Tools: {% for t in tools %}{{ t }}{% if not loop.last %}, {% endif %}{% endfor %}. {{ missing }}!",
            &vars(),
        )
        .unwrap();
        assert_eq!(out, "In /srv/w on 2026-11-25. Tools: view, shell. !");
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        assert!(render("{% for x in %}", &vars()).is_err());
        assert!(render("{{ 1 / 0 }}", &vars()).is_err());
    }
}
