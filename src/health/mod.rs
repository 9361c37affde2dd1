//! Health: what is known of each smart host's addresses, and (with probing) who decides it.
//!
//! - [`HealthView`](crate::answer::HealthView): the answer builder's input: per host, each
//!   address's state and whether an operator drained it.
//! - [`hysteresis`]: up/down decisions with flap protection (pure).
//! - [`HealthTask`]: the sole owner of those decisions; takes probe reports, resolutions and
//!   operator commands (`command`: what it is asked and answers; [`task`]: its loop;
//!   `probe_report`: what one probe report does), keeps the probe set ([`probes`],
//!   `resolvers`) in step with the configuration (`reload`), applies drains (`drain`: a
//!   site left without a healthy local host is read from the answers it then publishes),
//!   publishes snapshots (`publish`); `runtime` is what it keeps per host and address; the
//!   state files it writes are `state::kept`'s.
//! - `keys`: whether each pinned relay's address shows a key its TLSA records pin (events,
//!   `smarthostd_tlsa_mismatch`); a failure a DANE sender refuses takes an address down at
//!   once (`Thresholds::refusing`).
//! - `listings`: what it keeps of the blocklist checks of the sites' egress addresses (the
//!   book of verdicts and standings, the demotions the answers are built with); `verdicts`:
//!   what it does with each lookup, and where a listing change is reported.
//! - [`status`]: the report the admin API serves; `gather`: the task fills it in.

mod command;
mod drain;
mod gather;
pub(crate) mod hysteresis;
mod keys;
mod listings;
mod probe_report;
mod probes;
mod publish;
mod reload;
mod resolvers;
mod runtime;
pub mod status;
mod task;
mod verdicts;

pub use command::{Command, DrainOutcome, MergeOutcome};
pub use task::{HealthTask, Wiring, first_round_bound};
