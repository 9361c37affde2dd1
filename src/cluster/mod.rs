//! Several instances, one service: what the instances of a cluster share. For now, the clock
//! that stamps every drain and undrain.
//!
//! - [`hlc`]: the hybrid logical clock whose stamps order drains everywhere alike.

pub mod hlc;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hlc::{Hlc, Stamp, TooFarAhead};

/// The clock of this instance, shared by the health task (drains) and the peer task (reloads).
#[derive(Debug, Clone)]
pub struct Clock(Arc<Mutex<Hlc>>);

impl Clock {
    /// A clock whose stamps carry `origin`, this instance's name.
    pub fn new(origin: impl Into<String>) -> Self {
        Self(Arc::new(Mutex::new(Hlc::new(origin))))
    }

    /// A stamp for a change made now.
    pub fn now(&self) -> Stamp {
        self.0.lock().expect("clock lock").now(SystemTime::now())
    }

    /// Takes in a stamp seen from a peer.
    pub fn observe(&self, seen: &Stamp) -> Result<(), TooFarAhead> {
        (self.0.lock().expect("clock lock")).observe(seen, SystemTime::now())
    }
}
