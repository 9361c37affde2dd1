//! Waiting for something to be seen: one poll with a deadline, for async tests and for tests
//! that block (a server in its own process, whose log or exit is all there is to watch).

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for an answer or a state before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// What one look gives: a value once the awaited thing is seen, or what was seen instead (for
/// the failure message).
pub(crate) trait Seen {
    /// The value a wait returns.
    type Value;
    /// `Ok` once seen; `Err` with what the look saw otherwise.
    fn seen(self) -> Result<Self::Value, String>;
}

impl Seen for bool {
    type Value = ();
    fn seen(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("not yet".into()) }
    }
}

impl<T> Seen for Option<T> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

impl<T> Seen for Result<T, String> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self
    }
}

/// Looks with `look` until it sees what it waits for, and returns that; fails after
/// [`DEADLINE`], naming `what` never came and what the last look saw.
pub(crate) async fn eventually<S, F, Fut>(what: impl Display, look: F) -> S::Value
where
    S: Seen,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    eventually_within(DEADLINE, what, look).await
}

/// As [`eventually`], for something that must come within `limit` (part of what is tested).
pub(crate) async fn eventually_within<S, F, Fut>(
    limit: Duration,
    what: impl Display,
    look: F,
) -> S::Value
where
    S: Seen,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    poll(limit, look)
        .await
        .unwrap_or_else(|last| panic!("never {what} within {limit:?}; last: {last}"))
}

/// As [`eventually`], blocking the thread between looks (for `#[test]` functions).
pub(crate) fn eventually_blocking<S: Seen>(
    what: impl Display,
    look: impl FnMut() -> S,
) -> S::Value {
    poll_blocking(DEADLINE, look)
        .unwrap_or_else(|last| panic!("never {what} within {DEADLINE:?}; last: {last}"))
}

/// Looks until `look` sees it or `limit` has passed; what the last look saw then.
pub(crate) async fn poll<S, F, Fut>(limit: Duration, mut look: F) -> Result<S::Value, String>
where
    S: Seen,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let start = Instant::now();
    loop {
        match look().await.seen() {
            Ok(value) => return Ok(value),
            Err(last) if start.elapsed() >= limit => return Err(last),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// As [`poll`], blocking the thread between looks.
pub(crate) fn poll_blocking<S: Seen>(
    limit: Duration,
    mut look: impl FnMut() -> S,
) -> Result<S::Value, String> {
    let start = Instant::now();
    loop {
        match look().seen() {
            Ok(value) => return Ok(value),
            Err(last) if start.elapsed() >= limit => return Err(last),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}
