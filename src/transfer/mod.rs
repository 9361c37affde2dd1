//! Zone transfers to secondaries: smarthostd as the hidden primary of the DNS servers an
//! organisation already runs (`[transfer]`).
//!
//! - [`tsig`]: TSIG (RFC 8945) checked on requests and made on answers and NOTIFY.
//! - [`zone`]: the default view's answers as a transfer's records and messages, whole or as
//!   the difference from a version served lately.
//! - [`serve`]: AXFR/IXFR over TCP and TSIG-signed queries, answered or refused.
//! - [`notify`]: NOTIFY to the secondaries when the transferred zone changes.

pub mod notify;
pub mod serve;
pub mod tsig;
pub mod zone;

pub use serve::{Signed, Transfers, is_transfer};
