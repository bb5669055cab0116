//! Tool names as the model sees them: `<server>__<tool>`, in the characters and length
//! every provider accepts (`[A-Za-z0-9_-]`, at most 64).

/// Between a server's name and its tool's.
pub const SEPARATOR: &str = "__";
/// The proxy tool that lists a server's tools (`<server>__search_tools`).
pub const PROXY_SEARCH: &str = "search_tools";
/// The proxy tool that calls one of them (`<server>__call_tool`).
pub const PROXY_CALL: &str = "call_tool";

/// Longest tool name providers accept.
const MAX_NAME: usize = 64;

/// `<server>__<tool>` with every other character made `_` and cut to 64 characters;
/// `None` when the server's name leaves no room (validation keeps names short).
pub fn namespaced(server: &str, tool: &str) -> Option<String> {
    let mut name = format!("{server}{SEPARATOR}");
    if name.len() >= MAX_NAME || tool.is_empty() {
        return None;
    }
    name.extend(tool.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    }));
    name.truncate(MAX_NAME);
    Some(name)
}

/// For a proxied call (`<server>__call_tool` with `{"name": tool}`), the name the call
/// would have without the proxy, so `require_approval` listing `<server>__<tool>` holds for
/// both ways of calling it.
pub fn proxied_name(tool: &str, arguments: &str) -> Option<String> {
    let server = tool.strip_suffix(PROXY_CALL)?.strip_suffix(SEPARATOR)?;
    let args: serde_json::Value = serde_json::from_str(arguments).ok()?;
    namespaced(server, args.get("name")?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_providers_charset_and_length() {
        assert_eq!(namespaced("ha", "turn_on").unwrap(), "ha__turn_on");
        assert_eq!(
            namespaced("git", "repo.list/all").unwrap(),
            "git__repo_list_all"
        );
        assert_eq!(namespaced("x", &"a".repeat(100)).unwrap().len(), 64);
        assert_eq!(namespaced("x", "é").unwrap(), "x___");
        assert!(namespaced("x", "").is_none());
        assert!(namespaced(&"s".repeat(62), "t").is_none());
    }

    #[test]
    fn a_proxied_call_is_named_as_the_direct_one() {
        assert_eq!(
            proxied_name("ha__call_tool", r#"{"name": "turn_on", "arguments": {}}"#).as_deref(),
            Some("ha__turn_on")
        );
        assert_eq!(proxied_name("ha__search_tools", r#"{"name": "x"}"#), None);
        assert_eq!(proxied_name("ha__call_tool", "not json"), None);
        assert_eq!(proxied_name("call_tool", r#"{"name": "x"}"#), None);
    }
}
