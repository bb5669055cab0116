//! Executes the tool calls of one response. Calls run concurrently, except that tools which
//! change files take a write lock, so they run one at a time in the order the model called
//! them and never interleave with reads. An interrupt cancels every call still running
//! (dropping a shell call kills its process group).

use futures::future::join_all;
use ports::{EventPayload, ToolCallEnd, ToolCallResultPayload, ToolCallStatus, ToolResult};
use tokio::sync::RwLock;

use crate::core::run::{EventSink, RunControl};
use crate::core::tools::{MAX_RESULT_CHARS, ToolContext, Toolbox, truncate_chars};

/// One call as the model made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Runs every call and returns one result per call, in call order.
pub async fn run_calls(
    calls: Vec<CallRequest>,
    toolbox: &Toolbox,
    ctx: &ToolContext<'_>,
    control: &RunControl,
    sink: &dyn EventSink,
    agent_id: &str,
) -> Vec<ToolResult> {
    let files = RwLock::new(());
    let runs = calls.into_iter().map(|call| {
        let files = &files;
        async move {
            let (status, content, images) = match toolbox.get(&call.name) {
                None => (
                    ToolCallStatus::Error,
                    format!(
                        "unknown tool {:?}; available tools: {}",
                        call.name,
                        toolbox.names().join(", ")
                    ),
                    Vec::new(),
                ),
                Some(tool) => {
                    let call_it = async {
                        // Held until the call ends; the guard kind sets the ordering.
                        let _read;
                        let _write;
                        if tool.mutates_files() {
                            _write = files.write().await;
                        } else {
                            _read = files.read().await;
                        }
                        tool.call(ctx, &call.arguments).await
                    };
                    let outcome = if tool.finishes_on_interrupt() {
                        Some(call_it.await)
                    } else {
                        tokio::select! {
                            biased;
                            () = control.interrupted() => None,
                            r = call_it => Some(r),
                        }
                    };
                    match outcome {
                        None => (
                            ToolCallStatus::Cancelled,
                            "interrupted: the call was cancelled before it finished".to_owned(),
                            Vec::new(),
                        ),
                        Some(Err(e)) if control.is_interrupted() => {
                            (ToolCallStatus::Cancelled, e.0, Vec::new())
                        }
                        Some(Ok(out)) => (ToolCallStatus::Success, out.content, out.images),
                        Some(Err(e)) => (ToolCallStatus::Error, e.0, Vec::new()),
                    }
                }
            };
            let result = ToolResult {
                tool_call_id: call.id,
                tool_name: call.name,
                content: truncate_chars(ctx.env.redactor.redact(content), MAX_RESULT_CHARS),
                is_error: status != ToolCallStatus::Success,
                images,
            };
            report(sink, agent_id, &result, status);
            result
        }
    });
    join_all(runs).await
}

/// Emits a call's result and end, for calls answered without running (refused, denied,
/// resolved by the caller) as for those that ran.
pub fn report(sink: &dyn EventSink, agent_id: &str, result: &ToolResult, status: ToolCallStatus) {
    sink.emit(
        agent_id,
        EventPayload::ToolCallResult(ToolCallResultPayload {
            tool_call_id: result.tool_call_id.clone(),
            tool_name: result.tool_name.clone(),
            output: result.content.clone(),
            is_error: result.is_error,
        }),
    );
    sink.emit(
        agent_id,
        EventPayload::ToolCallEnd(ToolCallEnd {
            tool_call_id: result.tool_call_id.clone(),
            status,
        }),
    );
}
