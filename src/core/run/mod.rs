//! What one run shares between the agent loop, its tools and the run engine: the control
//! handle (interrupt, steering) and the sink its events go to. It sits below all three so
//! none of them imports another for it (the loop runs the tools; the tools only need the
//! run).

mod control;
mod events;
mod steering;

pub use control::RunControl;
pub use events::{CollectingSink, EventSink};
pub use steering::{Steer, SteerRefused, SteeringQueue};
