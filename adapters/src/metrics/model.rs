//! Model requests as metrics: a [`ModelProvider`] that passes every request to the real one
//! and counts how each ended, how long its stream took and the tokens it reported.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use ports::{Metrics, ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};

/// Outcome of a stream dropped before its end (an interrupt, a run that stopped reading).
const CANCELLED: &str = "cancelled";

/// The provider, metered.
pub struct MeteredProvider {
    inner: Arc<dyn ModelProvider>,
    metrics: Arc<dyn Metrics>,
}

impl MeteredProvider {
    pub fn new(inner: Arc<dyn ModelProvider>, metrics: Arc<dyn Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl ModelProvider for MeteredProvider {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        let started = Instant::now();
        match self.inner.stream(request).await {
            Ok(stream) => Ok(Metered {
                inner: stream,
                model: request.model.clone(),
                metrics: self.metrics.clone(),
                started,
                ended: false,
            }
            .boxed()),
            Err(e) => {
                self.metrics
                    .model_request(&request.model, e.code(), started.elapsed());
                Err(e)
            }
        }
    }
}

/// A response stream that records its outcome once: at its end, its first error, or when
/// dropped before either.
struct Metered {
    inner: ModelStream,
    model: String,
    metrics: Arc<dyn Metrics>,
    started: Instant,
    ended: bool,
}

impl Metered {
    fn end(&mut self, outcome: &str) {
        if !self.ended {
            self.ended = true;
            self.metrics
                .model_request(&self.model, outcome, self.started.elapsed());
        }
    }
}

impl Stream for Metered {
    type Item = Result<ModelDelta, ModelError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = this.inner.poll_next_unpin(cx);
        match &item {
            Poll::Ready(Some(Ok(ModelDelta::Usage(usage)))) => {
                this.metrics.model_tokens(
                    &this.model,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                );
            }
            Poll::Ready(Some(Err(e))) => this.end(e.code()),
            Poll::Ready(None) => this.end("ok"),
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        item
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.end(CANCELLED);
    }
}
