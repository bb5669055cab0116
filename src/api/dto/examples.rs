//! The example of every request body (spec 06): what Swagger UI's "try it out" pre-fills
//! and generated SDKs document. The run operations' examples work as they are against a
//! fresh start: they use the seeded `default` preset and text input.

use poem_openapi::types::{Example, MaybeUndefined};

use super::capped::Capped;
use super::presets::{ModelSettings, PresetCreateRequest, PresetUpdateRequest};
use super::runs::{
    ConversationUpdateRequest, ExecuteRequest, FireRequest, ForkRequest, InputPart, RunInputs,
    RunRequest, SteerRequest, TextInput,
};
use super::text::Text;
use crate::core::presets::SEEDED_PRESET_ID;

fn text(value: &str) -> Vec<InputPart> {
    vec![InputPart::Text(TextInput {
        text: Text(value.to_owned()),
    })]
}

fn inputs(value: &str) -> RunInputs {
    RunInputs {
        input: Some(text(value)),
        ..RunInputs::default()
    }
}

impl Example for RunRequest {
    fn example() -> Self {
        Self {
            preset_id: Some(Text(SEEDED_PRESET_ID.to_owned())),
            inputs: inputs("Hello! What can you do?"),
            ..Self::default()
        }
    }
}

impl Example for ForkRequest {
    fn example() -> Self {
        Self {
            preset_id: None,
            input: text("Try the other approach instead."),
            from_session_id: None,
            config_override: None,
        }
    }
}

impl Example for FireRequest {
    fn example() -> Self {
        Self {
            inputs: inputs("Summarize what the subagents found."),
            ..Self::default()
        }
    }
}

impl Example for ExecuteRequest {
    fn example() -> Self {
        Self {
            preset_id: Text(SEEDED_PRESET_ID.to_owned()),
            parent_session_id: None,
            fork: None,
            config_override: None,
            inputs: inputs("Hello! What can you do?"),
        }
    }
}

impl Example for SteerRequest {
    fn example() -> Self {
        Self {
            input: text("Keep the answer short."),
            message_id: None,
        }
    }
}

impl Example for ConversationUpdateRequest {
    fn example() -> Self {
        Self {
            title: MaybeUndefined::Value(Capped("Trip planning".to_owned())),
            default_preset_id: MaybeUndefined::Undefined,
            status: None,
            metadata: Some([("channel".to_owned(), super::text::Text("C042".to_owned()))].into()),
        }
    }
}

impl Example for PresetCreateRequest {
    fn example() -> Self {
        Self {
            preset_id: Capped("helper".to_owned()),
            name: Capped("Helper".to_owned()),
            description: Some(Capped("Echoes its input; needs no API key.".to_owned())),
            model: ModelSettings {
                name: Capped("test:echo".to_owned()),
                context_window: None,
                temperature: None,
                max_tokens: None,
                thinking: None,
                reasoning_effort: None,
                prompt_cache: true,
                fallbacks: Vec::new(),
            },
            system_prompt: None,
            toolsets: None,
            environment: None,
            subagents: None,
            tool_config: None,
            limits: None,
            mcp_servers: None,
            is_default: None,
        }
    }
}

impl Example for PresetUpdateRequest {
    fn example() -> Self {
        Self {
            name: Some(Capped("Helper (renamed)".to_owned())),
            ..Self::default()
        }
    }
}
