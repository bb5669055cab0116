//! The domain core. It talks to the world only through `ports` traits held as
//! `Arc<dyn Port>`; it never names an adapter, the web framework or a driver (a test checks this).
//!
//! # Glossary
//!
//! One word per concept; code, comments and the README use these and no synonyms.
//!
//! - **conversation**: a line of sessions a user sees as one chat; named after its root
//!   session ([`ports::ConversationId::rooted_at`]).
//! - **session**: the immutable snapshot one run leaves, linked to its parent like a commit;
//!   a **continue** adds a child in the same conversation, a **fork** starts a new
//!   conversation from it. Its **kind** ([`ports::SessionKind`]) is `agent` or
//!   `async_subagent` (which alone has a spawner and a name).
//! - **run**: one execution of a session, in three phases: **setup** (may refuse, creates
//!   nothing until the end), **execute** (the agent loop) and **finalize** (always ends it).
//!   The **run engine** starts and finishes runs; **live runs** interrupt, steer and attach
//!   to them; **queries** read what they stored; the **registry** knows what runs now.
//! - **event**: one numbered happening of a run; the **run log** holds a run's events in
//!   memory, the **bus** keeps them as the run's **stream** for re-attaching. The
//!   **transport** (`sse` or `stream`) is how the caller who started the run gets them.
//! - **transcript**: a run's events written as `display_messages`, what people read.
//!   **History** is the model-facing message list in `state.json`; **compaction**
//!   summarises old history so it fits the context window (a **handoff** is the agent
//!   asking for it).
//! - **turn**: one session's part of a conversation's transcript (the `turns` endpoint).
//!   **step**: one model request of the agent loop and the tool calls it asks for; steering
//!   is injected at a **step boundary** (the spec's "turn boundary").
//! - **preset**: a stored agent configuration; a run's **override** changes some of its
//!   fields for that run only. Its **limits** are the caps on one run (model requests,
//!   tokens, duration, tool calls); a run reaching one ends `limit_reached`. Its model's
//!   **fallbacks** answer when the model is down; a **breaker** per provider endpoint stops
//!   asking an endpoint after repeated outages.
//! - **metadata**: a conversation's caller-set string pairs; a **title** names it in lists.
//!   **Archiving** closes a conversation to runs until unarchived; **retention** deletes conversations
//!   and everything stored for them, at once or by the **sweep** of archived ones.
//! - **environment**: where a run's tools act, its **workspace** (files under the path
//!   policy) and its **shell**; a preset describes it in its environment section
//!   ([`ports::EnvironmentSpec`]) and the environment factory opens it. The **command
//!   variables** are the only variables a shell command gets. The **sandbox** confines
//!   local commands.
//! - **tool** / **toolset** / **toolbox**: one callable the model is offered; a named group
//!   a preset enables; the tools one agent has. A **deferred** call is not run by the loop:
//!   it waits for an **approval** or for its **external** result, given as a
//!   **resolution** by the next run.
//! - **chat**: a conversation as OpenAI-style clients and AG-UI clients hold it, resent
//!   whole with each request; its **chain** (the hash of its user/assistant texts) or an
//!   AG-UI **thread** id finds the session to go on from.
//! - **MCP server**: a program or endpoint a preset lists whose tools its agent gets,
//!   named `<server>__<tool>`; the **tool servers** port keeps one **connection** per
//!   preset and server. Its **launch** is how to reach it with every value read; **proxy**
//!   mode offers `search_tools` and `call_tool` instead of its tools.
//! - **steer**: guidance queued for a running session; **interrupt**: stops it, committing
//!   what it produced.
//! - **subagent**: a **delegate** runs a nested agent loop inside the caller's run; an
//!   **async subagent** is a session of its own whose **outcome** (result or failure) waits
//!   in the conversation's **mailbox** until a **fire** delivers it to the agent.

pub mod agent;
pub mod catalogue;
pub mod chat;
pub mod environment;
pub mod execution;
pub mod health;
pub mod limits;
pub mod metadata;
pub mod notifications;
pub mod preset_validation;
pub mod presets;
pub mod prompt;
pub mod recovery;
pub mod redact;
pub mod run;
pub mod subagents;
pub mod tools;

#[cfg(test)]
mod hexagon_test;
