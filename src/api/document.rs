//! The published OpenAPI document: poem-openapi's, made portable for generated clients.
//!
//! poem-openapi publishes Rust's unsigned integers as `format: uint64` / `uint32`, which
//! OpenAPI does not define: Go and Java generators map them to 32-bit ints. They become
//! `int64` / `int32` with `minimum: 0`, which every generator reads. Operations without
//! credentials (health, sign-in) say so with an empty `security`, so linters see every
//! operation's auth decided.

use serde_json::{Map, Value, json};

/// The published document as JSON text.
pub fn json(spec: &str) -> String {
    serde_json::to_string_pretty(&published(spec)).unwrap_or_default()
}

/// The published document as YAML text.
pub fn yaml(spec: &str) -> String {
    serde_yaml::to_string(&published(spec)).unwrap_or_default()
}

/// `spec` (poem-openapi's JSON) as published.
pub fn published(spec: &str) -> Value {
    let mut doc: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
    portable_integers(&mut doc);
    open_operations_say_so(&mut doc);
    doc
}

/// Rewrites unsigned integer formats everywhere in the document.
fn portable_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            retype_unsigned(map);
            map.values_mut().for_each(portable_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(portable_integers),
        _ => {}
    }
}

fn retype_unsigned(schema: &mut Map<String, Value>) {
    if schema.get("type").and_then(Value::as_str) == Some("integer") {
        exact_bounds(schema);
    }
    let signed = match schema.get("format").and_then(Value::as_str) {
        Some("uint64") => "int64",
        Some("uint32" | "uint16" | "uint8") => "int32",
        _ => return,
    };
    schema.insert("format".into(), signed.into());
    schema.entry("minimum").or_insert(json!(0));
}

/// Bounds of an integer schema as integers: poem-openapi writes them as floats, and a float
/// such as 2^53 - 1 does not survive being printed back (it would publish a smaller bound).
fn exact_bounds(schema: &mut Map<String, Value>) {
    for bound in ["minimum", "maximum"] {
        let Some(value) = schema.get(bound).and_then(Value::as_f64) else {
            continue;
        };
        #[allow(
            clippy::cast_possible_truncation,
            reason = "only integral values within i64 are converted"
        )]
        if value.fract() == 0.0 && value.abs() < 9.3e18 {
            schema.insert(bound.into(), json!(value as i64));
        }
    }
}

/// Every operation without a `security` gets an empty one (no credentials needed).
fn open_operations_say_so(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        operation.entry("security").or_insert(json!([]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_formats_become_signed_with_a_minimum() {
        let doc = published(
            r#"{"components":{"schemas":{"A":{"properties":{
                "n":{"type":"integer","format":"uint64"},
                "m":{"type":"integer","format":"uint32","minimum":1},
                "s":{"type":"integer","format":"int64"}}}}}}"#,
        );
        let props = &doc["components"]["schemas"]["A"]["properties"];
        assert_eq!(
            props["n"],
            json!({"type":"integer","format":"int64","minimum":0})
        );
        assert_eq!(
            props["m"],
            json!({"type":"integer","format":"int32","minimum":1})
        );
        assert_eq!(props["s"], json!({"type":"integer","format":"int64"}));
    }

    #[test]
    fn integer_bounds_stay_exact() {
        let doc = published(
            r#"{"p":{"type":"integer","format":"uint64","minimum":0.0,"maximum":9007199254740991.0}}"#,
        );
        assert_eq!(doc["p"]["maximum"], json!(9_007_199_254_740_991_i64));
        assert_eq!(doc["p"]["minimum"], json!(0));
        assert!(
            serde_json::to_string(&doc)
                .unwrap()
                .contains("9007199254740991")
        );
    }

    #[test]
    fn operations_without_security_get_an_empty_one() {
        let doc = published(
            r#"{"paths":{"/h":{"get":{"operationId":"h"}},
                         "/p":{"post":{"operationId":"p","security":[{"BearerAuth":[]}]}}}}"#,
        );
        assert_eq!(doc["paths"]["/h"]["get"]["security"], json!([]));
        assert_eq!(
            doc["paths"]["/p"]["post"]["security"],
            json!([{"BearerAuth":[]}])
        );
    }
}
