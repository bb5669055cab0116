//! Domain types shared by the core, the adapters and the API layer.

mod conversation;
mod event;
mod ids;
mod input;
mod mailbox;
mod message;
mod notification;
mod path_policy;
mod preset;
mod session;
mod state;
mod time;

pub use conversation::*;
pub use event::*;
pub use ids::*;
pub use input::*;
pub use mailbox::*;
pub use message::*;
pub use notification::*;
pub use path_policy::*;
pub use preset::*;
pub use session::*;
pub use state::*;
pub use time::*;
