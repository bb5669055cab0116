//! rmcp's types to ours, at the edge: what a server lists and what a call returns.

use ports::{ImageData, RemoteTool, RemoteToolResult};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents, Tool};
use serde_json::Value;

/// A listed tool; a missing description becomes the title or the name.
pub fn tool(t: Tool) -> RemoteTool {
    let description = t
        .description
        .map(|d| d.into_owned())
        .or(t.title)
        .unwrap_or_else(|| t.name.to_string());
    RemoteTool {
        name: t.name.into_owned(),
        description,
        parameters: Value::Object((*t.input_schema).clone()),
    }
}

/// A call's result: text blocks joined, images kept, embedded text resources inlined and
/// everything else named, so the model knows it was there.
pub fn result(r: CallToolResult) -> RemoteToolResult {
    let mut texts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for block in r.content {
        match block {
            ContentBlock::Text(t) => texts.push(t.text),
            ContentBlock::Image(i) => images.push(ImageData {
                mime_type: i.mime_type,
                data: i.data,
            }),
            ContentBlock::Audio(a) => texts.push(format!("[audio: {}]", a.mime_type)),
            ContentBlock::Resource(embedded) => texts.push(resource(embedded.resource)),
            ContentBlock::ResourceLink(link) => {
                texts.push(format!("[resource: {} <{}>]", link.name, link.uri));
            }
            #[allow(unreachable_patterns, reason = "rmcp's enum is non_exhaustive")]
            _ => texts.push("[content of a kind this service does not read]".to_owned()),
        }
    }
    RemoteToolResult {
        text: texts.join("\n"),
        images,
        structured: r.structured_content,
        is_error: r.is_error.unwrap_or(false),
    }
}

fn resource(contents: ResourceContents) -> String {
    match contents {
        ResourceContents::TextResourceContents { uri, text, .. } => format!("{uri}:\n{text}"),
        ResourceContents::BlobResourceContents { uri, mime_type, .. } => format!(
            "[binary resource: {uri} ({})]",
            mime_type.as_deref().unwrap_or("no type")
        ),
        #[allow(unreachable_patterns, reason = "rmcp's enum is non_exhaustive")]
        _ => "[resource of a kind this service does not read]".to_owned(),
    }
}
