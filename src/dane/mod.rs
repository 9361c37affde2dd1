//! DANE for smart hosts (RFC 6698, 7671, 7672): the TLSA records that pin each relay's key,
//! and the check a DANE sender makes of the chain a relay presents.
//!
//! Beside the flow, as [`wire`](crate::wire) is: [`config`](crate::config) reads the records
//! (`tlsa`, `tls_key`) with [`record`] and [`key`], [`probe`](crate::probe) checks every relay
//! against its records with [`verify`] after each STARTTLS handshake, and the topology lists
//! where the records are published
//! ([`Topology::tlsa_rrsets`](crate::topology::Topology::tlsa_rrsets)).
//!
//! - [`record`]: one record, `3 1 1 <hex>`, checked for what SMTP allows.
//! - [`key`]: a PEM certificate, chain or public key made into its `3 1 1` record.
//! - [`verify`]: matching a presented chain against the records, as a DANE sender does.

pub(crate) mod key;
pub(crate) mod record;
pub(crate) mod verify;

pub(crate) use key::{read_key_file, spki_of};
pub(crate) use record::Tlsa;
pub(crate) use verify::authenticate;

/// The owner-name prefix of an SMTP relay's TLSA records: senders connect to port 25
/// (RFC 7672 section 2.2.3: `_25._tcp.<TLSA base domain>`).
pub(crate) const SMTP_PREFIX: &str = "_25._tcp";
