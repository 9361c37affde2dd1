//! The answers: from topology and health to a [`Snapshot`] of prepared wire responses.
//!
//! - `health_view`: the [`HealthView`] answers are built from (made by the health task).
//! - [`plan`]: which hosts an MX answer names and at which preference (the MX trick, live).
//! - [`demotions`]: the sites a blocklist listing demotes (the build's other input, made by the
//!   health task), and the note on the answers they shaped.
//! - [`demoted_plan`]: the same answers with demoted sites' relays moved behind clean ones.
//! - [`build`](build::build): every answer of a generation, prepared once; `draft`: the pieces
//!   of a build in progress and the size check.
//! - [`snapshot`]: the immutable result the DNS edge looks answers up in; `denial`: the NSEC
//!   chain's search for the two records that prove a name does not exist.
//! - `records`: the records each answer holds (static RRsets, MX sets, addresses, NODATA).
//! - [`encode`], [`prepared`]: wire encoding with name compression; `body`: what a prepared
//!   body is and the sizes it must fit; `signed`: each answer's signed twin (RRSIGs after each
//!   RRset); `chain`: the NSEC chain and signed negative answers.
//!
//! Everything here is pure and tested without sockets; a signed build is given the time.

mod body;
pub(crate) mod build;
mod chain;
pub(crate) mod demoted_plan;
pub(crate) mod demotions;
mod denial;
mod draft;
pub(crate) mod encode;
mod health_view;
mod live;
pub(crate) mod plan;
pub(crate) mod prepared;
mod records;
#[cfg(test)]
mod resign_tests;
pub(crate) mod signed;
#[cfg(test)]
mod signed_tests;
pub(crate) mod snapshot;
#[cfg(test)]
mod tlsa_tests;

pub use build::{Signing, build};
pub use demotions::Demotions;
pub use draft::TooLarge;
pub use health_view::{AddressHealth, HealthView, HostHealth, State};
pub use plan::{Exchange, Mode, MxPlan};
pub use prepared::Prepared;
pub use snapshot::{Answer, Lookup, Snapshot, Warm, WarmCounters};
