//! Chats as OpenAI-style clients hold them (the `/v1` surface): each request carries the
//! whole chat and names a preset as its model. The chat's earlier user/assistant texts
//! find the session to go on from ([`chain`]): the latest of its conversation continues it,
//! an older one is forked (the client edited an earlier message), none starts a new
//! conversation whose history is the chat so far. An explicit conversation id wins.

mod chain;

use std::sync::Arc;

use ports::{
    AssistantPart, ChatChainRepo, ConversationId, InputPart, ModelMessage, Preset, PresetId,
    PresetRepo, SessionId, SessionRepo, SessionStatus, StorageError, Transport, UserPart,
};

use crate::core::execution::{RunEngine, RunError, RunRequest, RunTarget, StartedRun};
use chain::Chain;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
    /// A tool's answer in the client's own tool loop: not part of the chain.
    Tool,
}

/// One message of a chat: its text and, for a user, its images (http(s) or `data:` URLs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub text: String,
    pub images: Vec<String>,
}

/// A chat to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub preset_id: PresetId,
    pub messages: Vec<ChatMessage>,
    /// Go on with this conversation, whatever the chat says.
    pub conversation_id: Option<ConversationId>,
    pub transport: Transport,
}

/// A turn of an AG-UI thread: the client's thread id names the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRequest {
    pub preset_id: PresetId,
    pub thread_id: String,
    pub messages: Vec<ChatMessage>,
}

/// Why a chat cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The request is not a chat this service can answer (400).
    #[error("{0}")]
    Invalid(String),
    /// The model (a preset id) does not exist (404).
    #[error("no model {0}")]
    UnknownModel(PresetId),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A chat being answered: the run, and the chain its answer completes.
pub struct ChatRun {
    pub started: StartedRun,
    /// The preset asks for its tool activity to be shown (`tool_config.show_activity`).
    pub show_activity: bool,
    chain: Chain,
}

/// The chat use cases.
pub struct ChatService {
    engine: Arc<RunEngine>,
    presets: Arc<dyn PresetRepo>,
    sessions: Arc<dyn SessionRepo>,
    chains: Arc<dyn ChatChainRepo>,
}

impl ChatService {
    pub fn new(
        engine: Arc<RunEngine>,
        presets: Arc<dyn PresetRepo>,
        sessions: Arc<dyn SessionRepo>,
        chains: Arc<dyn ChatChainRepo>,
    ) -> Self {
        Self {
            engine,
            presets,
            sessions,
            chains,
        }
    }

    /// Every preset, as the models a client can pick.
    pub async fn models(&self) -> Result<Vec<Preset>, ChatError> {
        Ok(self.presets.list_presets().await?)
    }

    /// Starts the run answering the chat's last message.
    ///
    /// # Errors
    /// `Invalid` when the last message is not the user's; `UnknownModel`; what starting a
    /// run can refuse.
    pub async fn start(&self, req: ChatRequest) -> Result<ChatRun, ChatError> {
        let preset = self.preset(&req.preset_id).await?;
        let (last, earlier) = match req.messages.split_last() {
            Some((last, earlier)) if last.role == ChatRole::User => (last, earlier),
            _ => {
                return Err(ChatError::Invalid(
                    "the last message must be the user's".into(),
                ));
            }
        };
        let mut chain = chain_of(earlier);
        let (target, history) = self.target(&req, &chain, earlier).await?;
        let mut run = RunRequest::new(target, input_of(last), req.transport);
        run.preset_id = Some(req.preset_id.clone());
        run.history = history;
        let started = self.engine.start(run).await?;
        chain.user(&last.text);
        Ok(ChatRun {
            started,
            show_activity: preset.tool_config.show_activity,
            chain,
        })
    }

    /// Starts the run answering the last message of an AG-UI thread: a known thread
    /// continues its conversation, an unknown one starts a conversation from its earlier
    /// messages and is remembered for it.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn start_thread(&self, req: ThreadRequest) -> Result<StartedRun, ChatError> {
        self.preset(&req.preset_id).await?;
        let (last, earlier) = match req.messages.split_last() {
            Some((last, earlier)) if last.role == ChatRole::User => (last, earlier),
            _ => {
                return Err(ChatError::Invalid(
                    "the last message must be the user's".into(),
                ));
            }
        };
        let key = thread_key(&req.thread_id);
        let (target, history) = match self.open_chain(&key).await? {
            Some((_, conversation_id)) => (RunTarget::Continue { conversation_id }, Vec::new()),
            None => (RunTarget::NewConversation, history_of(earlier)),
        };
        let mut run = RunRequest::new(target, input_of(last), Transport::Sse);
        run.preset_id = Some(req.preset_id);
        run.history = history;
        let started = self.engine.start(run).await?;
        self.chains
            .remember_chain(&key, &started.session_id, &started.conversation_id)
            .await?;
        Ok(started)
    }

    /// Remembers the chain the run's `answer` completes, so the client's next request
    /// goes on from its session. A failure only costs continuity: it is logged.
    pub async fn finish(&self, run: ChatRun, answer: &str) {
        let ChatRun {
            started, mut chain, ..
        } = run;
        chain.assistant(answer);
        if let Err(e) = self
            .chains
            .remember_chain(&chain.hash(), &started.session_id, &started.conversation_id)
            .await
        {
            tracing::warn!(error = %e, session_id = %started.session_id, "chat chain not remembered");
        }
    }

    /// The preset a chat names as its model.
    async fn preset(&self, preset_id: &PresetId) -> Result<Preset, ChatError> {
        match self.presets.get_preset(preset_id).await {
            Err(StorageError::NotFound) => Err(ChatError::UnknownModel(preset_id.clone())),
            other => Ok(other?),
        }
    }

    /// The session and conversation a chain ends in, unless the conversation was archived:
    /// the client still holds the whole chat, so it goes on in a new conversation, as
    /// after a deletion.
    async fn open_chain(
        &self,
        key: &str,
    ) -> Result<Option<(SessionId, ConversationId)>, ChatError> {
        let Some((session_id, conversation_id)) = self.chains.find_chain(key).await? else {
            return Ok(None);
        };
        match self.sessions.get_session(&session_id).await {
            Ok(session) if session.status == SessionStatus::Archived => Ok(None),
            Err(StorageError::NotFound) => Ok(None),
            Ok(_) => Ok(Some((session_id, conversation_id))),
            Err(e) => Err(e.into()),
        }
    }

    /// Where the run goes, and the history a new conversation starts from.
    async fn target(
        &self,
        req: &ChatRequest,
        chain: &Chain,
        earlier: &[ChatMessage],
    ) -> Result<(RunTarget, Vec<ModelMessage>), ChatError> {
        if let Some(conversation_id) = &req.conversation_id {
            let target = RunTarget::Continue {
                conversation_id: conversation_id.clone(),
            };
            return Ok((target, Vec::new()));
        }
        if chain.is_empty() {
            return Ok((RunTarget::NewConversation, Vec::new()));
        }
        let Some((session_id, conversation_id)) = self.open_chain(&chain.hash()).await? else {
            return Ok((RunTarget::NewConversation, history_of(earlier)));
        };
        let latest = self.sessions.latest_continuable(&conversation_id).await?;
        let target = if latest.is_some_and(|s| s.session_id == session_id) {
            RunTarget::Continue { conversation_id }
        } else {
            RunTarget::Parent {
                parent_session_id: session_id,
                fork: true,
            }
        };
        Ok((target, Vec::new()))
    }
}

/// The chat key of an AG-UI thread: never a chain's hash (those are hex).
fn thread_key(thread_id: &str) -> String {
    format!("ag-ui-thread:{thread_id}")
}

/// The user/assistant texts of `messages` (assistant messages without text, the calls of
/// a client's own tool loop, are not part of it).
fn chain_of(messages: &[ChatMessage]) -> Chain {
    let mut chain = Chain::default();
    for m in messages {
        match m.role {
            ChatRole::User => chain.user(&m.text),
            ChatRole::Assistant if !m.text.is_empty() => chain.assistant(&m.text),
            _ => {}
        }
    }
    chain
}

/// The chat so far as model-facing history: user and assistant texts, images kept.
fn history_of(messages: &[ChatMessage]) -> Vec<ModelMessage> {
    messages
        .iter()
        .filter_map(|m| match m.role {
            ChatRole::User => {
                let mut parts = vec![UserPart::Text {
                    text: m.text.clone(),
                }];
                parts.extend(m.images.iter().map(|url| image_part(url)));
                Some(ModelMessage::User { parts })
            }
            ChatRole::Assistant if !m.text.is_empty() => Some(ModelMessage::Assistant {
                parts: vec![AssistantPart::Text {
                    text: m.text.clone(),
                }],
            }),
            _ => None,
        })
        .collect()
}

fn image_part(url: &str) -> UserPart {
    match data_url(url) {
        Some((mime_type, data)) => UserPart::Image {
            url: None,
            data: Some(data.to_owned()),
            mime_type: Some(mime_type.to_owned()),
        },
        None => UserPart::Image {
            url: Some(url.to_owned()),
            data: None,
            mime_type: None,
        },
    }
}

/// The run's input: the message's text and its images (inline data as a binary part, a
/// URL as a url part, downloaded under the outbound policy).
fn input_of(message: &ChatMessage) -> Vec<InputPart> {
    let mut parts = Vec::new();
    if !message.text.is_empty() {
        parts.push(InputPart::Text {
            text: message.text.clone(),
        });
    }
    for url in &message.images {
        parts.push(match data_url(url) {
            Some((mime_type, data)) => InputPart::Binary {
                data: data.to_owned(),
                mime_type: mime_type.to_owned(),
                name: None,
            },
            None => InputPart::Url { url: url.clone() },
        });
    }
    parts
}

/// `data:<mime>;base64,<data>` split in its type and data.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let mime_type = head.strip_suffix(";base64")?;
    Some((mime_type, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: ChatRole, text: &str) -> ChatMessage {
        ChatMessage {
            role,
            text: text.into(),
            images: Vec::new(),
        }
    }

    #[test]
    fn the_chain_skips_system_tool_and_empty_assistant_messages() {
        let with_noise = [
            msg(ChatRole::System, "be nice"),
            msg(ChatRole::User, "hi"),
            msg(ChatRole::Assistant, ""),
            msg(ChatRole::Tool, "42"),
            msg(ChatRole::Assistant, "hello"),
        ];
        let plain = [msg(ChatRole::User, "hi"), msg(ChatRole::Assistant, "hello")];
        assert_eq!(chain_of(&with_noise).hash(), chain_of(&plain).hash());
        assert_eq!(history_of(&with_noise).len(), 2);
    }

    #[test]
    fn images_become_binary_or_url_parts() {
        let mut m = msg(ChatRole::User, "what is this?");
        m.images = vec![
            "data:image/png;base64,iVBOR".into(),
            "https://example.org/cat.jpg".into(),
        ];
        assert_eq!(
            input_of(&m),
            vec![
                InputPart::Text {
                    text: "what is this?".into()
                },
                InputPart::Binary {
                    data: "iVBOR".into(),
                    mime_type: "image/png".into(),
                    name: None
                },
                InputPart::Url {
                    url: "https://example.org/cat.jpg".into()
                },
            ]
        );
        assert_eq!(data_url("data:text/plain,hi"), None);
    }
}
