//! External tools (spec 05): tools a caller declares for one run and executes itself.
//! They are parsed where the request arrives, so the model is never offered a tool a
//! provider would refuse or one that shadows a built-in.

use ports::ToolSchema;

use crate::core::catalogue;
use crate::core::preset_validation::FieldError;

/// Longest tool name the providers accept.
const MAX_NAME: usize = 64;

/// A run's external tools, each keeping the rules: a name of 1-64 characters of
/// `a-z A-Z 0-9 _ -`, unique, not a built-in tool's name; parameters a JSON schema of an
/// object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExternalTools(Vec<ToolSchema>);

impl ExternalTools {
    /// # Errors
    /// Every broken rule, by field.
    pub fn parse(tools: Vec<ToolSchema>) -> Result<Self, Vec<FieldError>> {
        check(&tools)?;
        Ok(Self(tools))
    }

    pub fn into_inner(self) -> Vec<ToolSchema> {
        self.0
    }
}

fn check(tools: &[ToolSchema]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        let field = |f: &str| format!("external_tools[{i}].{f}");
        let name = tool.name.as_str();
        let well_formed = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !well_formed {
            errors.push(FieldError {
                field: field("name"),
                message: "must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'".to_owned(),
            });
        } else if catalogue::TOOLSETS
            .iter()
            .any(|(_, names)| names.contains(&name))
        {
            errors.push(FieldError {
                field: field("name"),
                message: format!("{name} is a built-in tool's name"),
            });
        } else if !seen.insert(name) {
            errors.push(FieldError {
                field: field("name"),
                message: format!("{name} is declared more than once"),
            });
        }
        let object = tool.parameters.as_object();
        if object.and_then(|o| o.get("type")) != Some(&serde_json::Value::from("object")) {
            errors.push(FieldError {
                field: field("parameters"),
                message: "must be a JSON schema with \"type\": \"object\"".to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(name: &str, parameters: serde_json::Value) -> ToolSchema {
        ToolSchema {
            name: name.into(),
            description: String::new(),
            parameters,
        }
    }

    #[test]
    fn names_must_be_well_formed_unique_and_not_built_in() {
        let object = json!({"type": "object", "properties": {}});
        assert!(ExternalTools::parse(vec![tool("lookup_order", object.clone())]).is_ok());
        let errors = ExternalTools::parse(vec![
            tool("bad name", object.clone()),
            tool("shell", object.clone()),
            tool("x", object),
            tool("x", json!({"type": "string"})),
            tool("y", json!([])),
        ])
        .unwrap_err();
        let got: Vec<(&str, bool)> = errors
            .iter()
            .map(|e| (e.field.as_str(), !e.message.is_empty()))
            .collect();
        assert_eq!(
            got,
            [
                ("external_tools[0].name", true),
                ("external_tools[1].name", true),
                ("external_tools[3].name", true),
                ("external_tools[3].parameters", true),
                ("external_tools[4].parameters", true),
            ]
        );
        assert!(errors[1].message.contains("built-in"));
        assert!(errors[2].message.contains("more than once"));
    }
}
