//! `--config FILE`: the settings as a TOML table (`PORT = 8080`) or as `.env` lines
//! (`PORT=8080`), told apart by the `.toml` extension. Keys are variable names, in any
//! case; TOML lists become the comma-separated values the variables take.

use std::path::Path;

/// The `(VARIABLE, value)` pairs of the file.
///
/// # Errors
/// A sentence naming what is wrong: the file cannot be read, does not parse, or holds a
/// value that is not a string, number, boolean or list of them.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        toml_pairs(&text)
    } else {
        dotenvy::from_read_iter(text.as_bytes())
            .map(|item| item.map_err(|e| e.to_string()))
            .collect()
    }
}

fn toml_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = scalar(&value)
                .or_else(|| match &value {
                    toml::Value::Array(items) => items
                        .iter()
                        .map(scalar)
                        .collect::<Option<Vec<_>>>()
                        .map(|items| items.join(",")),
                    _ => None,
                })
                .ok_or_else(|| format!("{key}: expected a string, number, boolean or list"))?;
            Ok((key.to_ascii_uppercase(), value))
        })
        .collect()
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_env_files_give_the_same_settings() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("agent-runtime.toml");
        std::fs::write(
            &toml,
            "port = 9000\nmetrics_public = true\nCORS_ORIGINS = [\"https://a.lan\", \"https://b.lan\"]\n",
        )
        .unwrap();
        let env = dir.path().join("config.env");
        std::fs::write(&env, "PORT=9000\n# a comment\nMETRICS_PUBLIC=true\nCORS_ORIGINS=https://a.lan,https://b.lan\n").unwrap();
        let mut from_toml = read(&toml).unwrap();
        let mut from_env = read(&env).unwrap();
        from_toml.sort();
        from_env.sort();
        assert_eq!(from_toml, from_env);
        assert!(from_toml.contains(&("PORT".to_owned(), "9000".to_owned())));

        std::fs::write(&toml, "port = { a = 1 }\n").unwrap();
        assert!(
            read(&toml).unwrap_err().contains("PORT") || read(&toml).unwrap_err().contains("port")
        );
        std::fs::write(&toml, "port = \n").unwrap();
        assert!(read(&toml).is_err());
    }
}
