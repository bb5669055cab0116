//! AG-UI (the event protocol of CopilotKit and other agent UIs): `?encoding=ag-ui` on
//! every event stream ([`AgUiEncoder`]), and `POST /api/ag-ui/{preset_id}`, which takes
//! AG-UI's `RunAgentInput` so an AG-UI client drives a conversation unchanged.

mod encoder;
mod endpoint;

pub use encoder::AgUiEncoder;
pub use endpoint::run;
