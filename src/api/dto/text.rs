//! A strictly parsed JSON string. poem-openapi's `String` also accepts numbers and booleans,
//! so a body with `"name": 5` would pass a schema that says `type: string`; this type
//! refuses them, keeping the server exactly as strict as its published schema.

use poem_openapi::{
    NewType,
    types::{ParseError, ParseFromJSON, ParseResult},
};

// A JSON string; numbers, booleans and null are refused. (A plain comment: a doc comment
// would become the `title` of every string field in the published schema.)
#[derive(NewType, Debug, Clone, PartialEq, Eq, Default)]
#[oai(
    from_json = false,
    from_parameter = false,
    from_multipart = false,
    to_header = false
)]
pub struct Text(pub String);

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(s)) => Ok(Self(s)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0
    }
}

/// Converts a list of domain strings.
pub fn texts<T: From<String>>(v: Vec<String>) -> Vec<T> {
    v.into_iter().map(T::from).collect()
}

/// Converts a list of wire strings.
pub fn strings<T: Into<String>>(v: Vec<T>) -> Vec<String> {
    v.into_iter().map(Into::into).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strings_parse() {
        assert_eq!(
            Text::parse_from_json(Some(serde_json::json!("a"))).unwrap(),
            Text("a".into())
        );
        for bad in [
            serde_json::json!(5),
            serde_json::json!(true),
            serde_json::Value::Null,
            serde_json::json!([]),
        ] {
            assert!(Text::parse_from_json(Some(bad.clone())).is_err(), "{bad}");
        }
        assert!(Text::parse_from_json(None).is_err());
    }
}
