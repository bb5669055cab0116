//! Strings whose published schema carries a `maxLength`: the caps of `core::limits`, so a
//! client sees them in the schema. Parsing does not enforce them: the core refuses an
//! oversize value with 422 `validation_failed` naming the field (a parse failure here would
//! be a 400 without the field), and parses strictly like [`super::text::Text`].

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};

use crate::core::limits;

// A JSON string of at most N characters (a plain comment: a doc comment would become the
// schema's title).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capped<const N: usize>(pub String);

/// A display name.
pub type Name = Capped<{ limits::MAX_NAME_CHARS }>;
/// A conversation title.
pub type Title = Capped<{ limits::MAX_TITLE_CHARS }>;
/// A description.
pub type Description = Capped<{ limits::MAX_DESCRIPTION_CHARS }>;
/// A subagent's instruction.
pub type Instruction = Capped<{ limits::MAX_INSTRUCTION_CHARS }>;
/// An identifier: a model, toolset, tool or variable name, a container id.
pub type Ident = Capped<{ limits::MAX_IDENT_CHARS }>;
/// A path.
pub type PathText = Capped<{ limits::MAX_PATH_CHARS }>;
/// A system prompt template.
pub type Template = Capped<{ limits::MAX_TEMPLATE_CHARS }>;

impl<const N: usize> Type for Capped<N> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            max_length: Some(N),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> ParseFromJSON for Capped<N> {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(s)) => Ok(Self(s)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<const N: usize> ToJSON for Capped<N> {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}

impl<const N: usize> From<String> for Capped<N> {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl<const N: usize> From<Capped<N>> for String {
    fn from(c: Capped<N>) -> Self {
        c.0
    }
}

impl<const N: usize> From<ports::PresetId> for Capped<N> {
    fn from(id: ports::PresetId) -> Self {
        Self(id.into())
    }
}

impl<const N: usize> From<Capped<N>> for ports::PresetId {
    fn from(c: Capped<N>) -> Self {
        c.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_says_max_length_and_parsing_is_strict_but_uncapped() {
        let MetaSchemaRef::Inline(schema) = Name::schema_ref() else {
            panic!("inline schema expected");
        };
        assert_eq!((schema.ty, schema.max_length), ("string", Some(200)));
        let long = "x".repeat(500);
        assert_eq!(
            Name::parse_from_json(Some(serde_json::json!(long)))
                .unwrap()
                .0,
            long,
            "the core refuses it with 422 naming the field"
        );
        assert!(Name::parse_from_json(Some(serde_json::json!(5))).is_err());
        assert!(Name::parse_from_json(None).is_err());
    }
}
