//! Which methods each documented path accepts, for the `Allow` header of a 405. Built once
//! from the generated OpenAPI document so it can never disagree with the routes.

/// Path templates (`/api/presets/{preset_id}/get`) with their methods.
pub struct AllowIndex {
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl AllowIndex {
    /// Reads `paths` of an OpenAPI JSON document; an unreadable document yields an empty index.
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = spec.get("paths").and_then(|p| p.as_object()) {
            for (path, ops) in paths {
                let methods: Vec<String> = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                routes.push((segments(&format!("/api{path}")), methods));
            }
        }
        Self { routes }
    }

    /// The `Allow` value for a concrete request path, if a documented path matches it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        self.route(path).map(|(_, methods)| methods.join(", "))
    }

    /// The documented template a concrete path matches (`/api/presets/{preset_id}/get`),
    /// for the access log: ids stay out of it.
    pub fn template(&self, path: &str) -> Option<String> {
        self.route(path)
            .map(|(template, _)| format!("/{}", template.join("/")))
    }

    fn route(&self, path: &str) -> Option<&(Vec<String>, Vec<String>)> {
        let wanted = segments(path);
        self.routes.iter().find(|(template, _)| {
            template.len() == wanted.len()
                && template
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t == w || (t.starts_with('{') && t.ends_with('}')))
        })
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_segment_by_segment() {
        let idx = AllowIndex::from_spec(
            r#"{"paths": {"/presets/{preset_id}/get": {"get": {}}, "/presets/create": {"post": {}}}}"#,
        );
        assert_eq!(idx.allowed("/api/presets/abc/get").as_deref(), Some("GET"));
        assert_eq!(idx.allowed("/api/presets/create").as_deref(), Some("POST"));
        assert_eq!(idx.allowed("/api/presets/abc/def/get"), None);
        assert_eq!(idx.allowed("/api/other"), None);
        assert_eq!(
            idx.template("/api/presets/abc/get").as_deref(),
            Some("/api/presets/{preset_id}/get")
        );
        assert_eq!(idx.template("/api/other"), None);
    }
}
