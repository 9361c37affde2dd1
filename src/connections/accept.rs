//! Accept errors: out of descriptors (EMFILE, ENFILE) or memory, a listener must wait before
//! trying again — the pending connection stays in the kernel's queue, so retrying at once would
//! spin a core without ever succeeding.

use std::time::Duration;

use tracing::warn;

/// The first pause after an accept error.
const FIRST: Duration = Duration::from_millis(10);
/// The longest pause.
const MOST: Duration = Duration::from_secs(1);

/// Pauses that double from [`FIRST`] to [`MOST`] while accept keeps failing.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// A successful accept resets the pauses.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// The pause after one more failure.
    pub(crate) fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        FIRST
            .saturating_mul(1 << self.failures.saturating_sub(1).min(16))
            .min(MOST)
    }

    /// Logs an accept error (the first of a run, then every 64th) and sleeps.
    pub(crate) async fn pause(&mut self, listener: &'static str, error: &std::io::Error) {
        let pause = self.failed();
        if self.failures == 1 || self.failures.is_multiple_of(64) {
            warn!(
                listener,
                %error,
                failures = self.failures,
                pause_ms = pause.as_millis() as u64,
                "cannot accept connections; backing off"
            );
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_second_and_reset_after_a_success() {
        let mut b = Backoff::default();
        let pauses: Vec<u128> = (0..10).map(|_| b.failed().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), FIRST);
    }
}
