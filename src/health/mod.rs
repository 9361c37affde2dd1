//! Health: what is known of each smart host's addresses, and (with probing) who decides it.
//!
//! - [`HealthView`]: the answer builder's input: per host, each address's state and whether an
//!   operator drained it.
//! - [`hysteresis`]: up/down decisions with flap protection (pure).
//! - [`HealthTask`]: the sole owner of those decisions; takes probe reports, resolutions and
//!   operator commands ([`task`]), keeps the probe set ([`probes`], `resolvers`) in step with
//!   the configuration (`reload`), applies drains (`drain`), publishes snapshots (`publish`);
//!   `runtime` is what it keeps per host and address.
//! - [`status`]: the report the admin API serves (made in `report`).

mod drain;
pub mod hysteresis;
mod probes;
mod publish;
mod reload;
mod report;
mod resolvers;
mod runtime;
pub mod status;
mod task;

pub use crate::answer::health::{AddressHealth, HealthView, HostHealth, State};
pub use task::{Command, DrainOutcome, HealthTask, Wiring, first_round_bound};
