//! Shared helpers of the contract suites.

/// Called when a backend's server cannot be reached: a visible SKIP, or a failure when
/// `REQUIRE_SERVICES=1`. Returns `None` so the caller can bail out of the test.
pub fn skip_or_fail<T>(suite: &str, why: &str) -> Option<T> {
    if std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{suite}: required service unavailable: {why}");
    }
    eprintln!("SKIP {suite}: {why}");
    None
}

/// A short unique suffix for keys, schemas and prefixes so tests never share state.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Instantiates `cases` for each `backend => constructor` pair as
/// `suite::backend::case` tests. Constructors are async and return `Option<impl Fixture>`
/// (`None` = skipped); the case receives the fixture's port.
#[macro_export]
macro_rules! contract {
    ($suite:ident, [$($backend:ident => $make:expr),+ $(,)?], [$($case:ident),+ $(,)?]) => {
        $(
            mod $backend {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let Some(fixture) = $make.await else { return };
                        super::$case(&fixture).await;
                    }
                )+
            }
        )+
    };
}
