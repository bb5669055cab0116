//! Shared helpers of the contract suites.

pub use adapters::testing::*;

/// Instantiates `cases` for each `backend => constructor` pair as
/// `suite::backend::case` tests. Constructors are async and return `Option<impl Fixture>`
/// (`None` = skipped); the case receives the fixture's port.
#[macro_export]
macro_rules! contract {
    // One backend per step: `$case` is declared once but needed inside every backend's
    // module, which a single nested repetition cannot express.
    (@backend $backend:ident, $make:expr, [$($case:ident),+ $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(fixture) = $make.await else { return };
                    super::$case(&fixture).await;
                }
            )+
        }
    };
    ($suite:ident, [$($backend:ident => $make:expr),+ $(,)?], $cases:tt) => {
        $( $crate::contract!(@backend $backend, $make, $cases); )+
    };
}
