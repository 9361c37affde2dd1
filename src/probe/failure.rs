//! A failed probe: why, in words, and whether a DANE sender would refuse the relay for it.

/// Ways a pinned relay fails that a DANE sender refuses on its very next connection, whatever
/// happens after: no retry makes such a relay pass, so the health task takes its address down
/// at once instead of waiting for `probe.fall` failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaneFailure {
    /// Its certificate chain matches none of its TLSA records.
    Mismatch,
    /// It presented a certificate whose private key it does not hold (its handshake signature
    /// does not verify): the pinned certificate replayed by someone else.
    KeyNotHeld,
    /// It offered no STARTTLS: a DANE sender requires TLS of a relay with TLSA records.
    NoTls,
}

impl DaneFailure {
    /// Whether the key the relay showed is not one its records pin: a mismatch, or a pinned
    /// certificate shown by someone without its key. What `smarthostd_tlsa_mismatch` counts.
    pub fn is_wrong_key(self) -> bool {
        matches!(self, DaneFailure::Mismatch | DaneFailure::KeyNotHeld)
    }
}

/// A probe that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Why, in words; text from the relay in it is escaped.
    pub reason: String,
    /// Set when a DANE sender would refuse the relay for this.
    pub dane: Option<DaneFailure>,
}

impl Failed {
    /// A failure a DANE sender would refuse the relay for.
    pub fn dane(reason: impl Into<String>, kind: DaneFailure) -> Self {
        Self {
            reason: reason.into(),
            dane: Some(kind),
        }
    }
}

impl From<String> for Failed {
    fn from(reason: String) -> Self {
        Self { reason, dane: None }
    }
}

impl From<&str> for Failed {
    fn from(reason: &str) -> Self {
        reason.to_string().into()
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}
