//! Conversation titles (so a list is not a column of nulls): a new conversation is titled
//! with its first user text, cut; with `TITLE_MODEL` set, a cheap model then writes a
//! better one from the first exchange, unless someone edited the title meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ports::{
    ContentKind, ConversationId, ConversationPatch, ConversationRepo, EventEnvelope, EventPayload,
    MAIN_AGENT, ModelDelta, ModelMessage, ModelProvider, ModelRequest, SessionRecord,
    SessionStatus, SessionType, UserPart, now,
};

use super::engine::RunEngine;
use crate::core::limits::{FALLBACK_TITLE_CHARS, MAX_TITLE_CHARS};
use crate::core::notifications::Notifier;

/// How long the title model may take before the fallback title stays.
const TITLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters of each side of the exchange the title model reads.
const EXCHANGE_CHARS: usize = 2_000;

const TITLE_INSTRUCTION: &str = "You name conversations. Reply with a title of at most eight \
    words for the conversation below, in its language: no quotes, no final punctuation, \
    nothing else.";

/// The first user text on one line, cut at [`FALLBACK_TITLE_CHARS`] characters (the last
/// one an ellipsis when cut); `None` when there is no text.
pub fn fallback(text: &str) -> Option<String> {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return None;
    }
    if line.chars().count() <= FALLBACK_TITLE_CHARS {
        return Some(line);
    }
    let mut cut: String = line.chars().take(FALLBACK_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

/// Writes titles with the title model.
#[derive(Clone)]
pub struct TitleWriter {
    pub model: String,
    pub provider: Arc<dyn ModelProvider>,
    pub conversations: Arc<dyn ConversationRepo>,
    pub notifier: Arc<Notifier>,
}

impl TitleWriter {
    /// Titles the conversation from its first exchange, if its title is still the
    /// fallback of `user_text` (else someone chose one, which wins).
    pub async fn title(&self, conversation_id: &ConversationId, user_text: &str, answer: &str) {
        let Some(title) = self.ask(user_text, answer).await else {
            return;
        };
        let unchanged = match self.conversations.get_conversation(conversation_id).await {
            Ok(c) => c.title == fallback(user_text),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the conversation to title it");
                return;
            }
        };
        if !unchanged {
            return;
        }
        let patch = ConversationPatch {
            title: Some(Some(title)),
            ..ConversationPatch::default()
        };
        match self
            .conversations
            .update_conversation(conversation_id, &patch, now())
            .await
        {
            Ok(_) => self
                .notifier
                .publish(super::notices::edited(conversation_id.clone())),
            Err(e) => tracing::warn!(error = %e, "cannot store the conversation's title"),
        }
    }

    /// The model's title, cleaned; `None` when it fails, times out or says nothing.
    async fn ask(&self, user_text: &str, answer: &str) -> Option<String> {
        let request = ModelRequest {
            model: self.model.clone(),
            system: TITLE_INSTRUCTION.to_owned(),
            messages: vec![ModelMessage::User {
                parts: vec![UserPart::Text {
                    text: format!("User: {}\n\nAssistant: {}", head(user_text), head(answer)),
                }],
            }],
            max_tokens: Some(64),
            ..ModelRequest::default()
        };
        let text = tokio::time::timeout(TITLE_TIMEOUT, async {
            let mut stream = self.provider.stream(&request).await.ok()?;
            let mut text = String::new();
            while let Some(delta) = stream.next().await {
                match delta {
                    Ok(ModelDelta::Text(t)) => text.push_str(&t),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            Some(text)
        })
        .await
        .ok()
        .flatten();
        if text.is_none() {
            tracing::warn!(model = %self.model, "the title model gave no title");
        }
        clean(&text?)
    }
}

impl RunEngine {
    /// With a title model, a new conversation's first exchange is titled off the run's
    /// path (the terminal event does not wait for it).
    pub(super) fn title_first_exchange(
        &self,
        record: &SessionRecord,
        status: SessionStatus,
        user_text: &str,
        events: &[Arc<EventEnvelope>],
    ) {
        let Some(model) = &self.settings.title_model else {
            return;
        };
        let first = record.parent_session_id.is_none()
            && record.session_type() == SessionType::Agent
            && status != SessionStatus::Failed;
        if !first {
            return;
        }
        let writer = TitleWriter {
            model: model.clone(),
            provider: self.ports.provider.clone(),
            conversations: self.ports.conversations.clone(),
            notifier: self.ports.notifier.clone(),
        };
        let conversation_id = record.conversation_id.clone();
        let user_text = user_text.to_owned();
        let answer = answer_of(events);
        self.tasks.spawn(async move {
            writer.title(&conversation_id, &user_text, &answer).await;
        });
    }
}

/// The main agent's last answer text.
fn answer_of(events: &[Arc<EventEnvelope>]) -> String {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.payload {
            EventPayload::ContentDone(done)
                if e.agent_id == MAIN_AGENT && done.kind == ContentKind::Text =>
            {
                Some(done.text.clone())
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn head(text: &str) -> String {
    text.chars().take(EXCHANGE_CHARS).collect()
}

/// The model's first line without quotes, markdown or final punctuation.
fn clean(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .trim_start_matches(['#', '*', ' '])
        .trim_matches(['"', '\'', '*', '`', '“', '”'])
        .trim_end_matches(['.', '!', ' '])
        .trim();
    let line: String = line.chars().take(MAX_TITLE_CHARS.min(120)).collect();
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_the_first_text_on_one_line_cut_at_sixty() {
        assert_eq!(
            fallback("  Fix the\n build  "),
            Some("Fix the build".into())
        );
        assert_eq!(fallback(" \n "), None);
        let long = "word ".repeat(30);
        let title = fallback(&long).unwrap();
        assert_eq!(title.chars().count(), 60);
        assert!(title.ends_with("word…"), "{title}");
        let exact = "é".repeat(60);
        assert_eq!(fallback(&exact), Some(exact.clone()));
    }

    #[test]
    fn model_titles_lose_quotes_markdown_and_final_punctuation() {
        assert_eq!(
            clean("\n\"Fixing the build.\"\nmore"),
            Some("Fixing the build".into())
        );
        assert_eq!(clean("## **Trip to Lyon**"), Some("Trip to Lyon".into()));
        assert_eq!(clean("  \n \"\" "), None);
    }
}
