//! Parsing an optional field whose schema is a bare `$ref` (an object or an enum). Such a
//! field cannot be documented as nullable without turning its schema into `allOf`, which
//! generated clients drop, so `null` is refused instead, as the published schema says.

use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult};
use serde_json::Value;

/// Absent is `None`; `null` is refused; anything else parses as `T`.
pub fn no_null<T: ParseFromJSON>(value: Option<Value>) -> ParseResult<Option<T>> {
    match value {
        Some(Value::Null) => Err(ParseError::custom(
            "null is not allowed here; leave the field out instead",
        )),
        other => Option::<T>::parse_from_json(other).map_err(ParseError::propagate),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::dto::events::Transport;

    #[test]
    fn absent_is_none_null_is_refused_values_parse() {
        assert_eq!(no_null::<Transport>(None).unwrap(), None);
        assert!(no_null::<Transport>(Some(Value::Null)).is_err());
        assert_eq!(
            no_null::<Transport>(Some(json!("stream"))).unwrap(),
            Some(Transport::Stream)
        );
        assert!(no_null::<Transport>(Some(json!("carrier pigeon"))).is_err());
    }
}
