//! Health: what is known of each smart host's addresses, and (with probing) who decides it.
//!
//! - [`HealthView`]: the answer builder's input: per host, each address's state and whether an
//!   operator drained it.
//! - [`hysteresis`]: up/down decisions with flap protection (pure).
//! - [`HealthTask`]: the sole owner of those decisions; takes probe reports and operator
//!   commands, publishes snapshots.
//! - [`drains`]: drains kept across restarts; [`status`]: the report the admin API serves.

pub mod drains;
pub mod hysteresis;
mod publish;
mod reload;
pub mod status;
mod task;
mod view;

pub use task::{Command, HealthTask, Wiring, state_name};
pub use view::{AddressHealth, HealthView, HostHealth, State};
