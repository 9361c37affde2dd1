//! smarthostd: health-checked, site-aware DNS for outbound mail.
//!
//! MTAs given a domain as their relay look up its MX records first, rotate among the lowest
//! preference and fall back to higher ones. smarthostd answers a synthetic zone so that each
//! site's pseudo-domain names its own healthy smart hosts first and other sites' after — the
//! fake-zone MX trick, made live by SMTP probes.
//!
//! Data flows one way, and each module imports only from those above it here:
//!
//! - [`wire`]: DNS wire numbers (types, RCODEs, options) and name forms, and
//!   [`network_text`]: text from the network (relay replies, blocklist reasons, resolver
//!   errors) made safe where it enters, both shared by all below, and [`dane`]: TLSA records
//!   and the check a DANE sender makes of a relay's certificate chain, which the config
//!   reads, the probes apply and the topology publishes.
//! - [`config`] → [`loaded`]: the TOML file and the zone file ([`zone`]), checked together into
//!   a [`topology`].
//! - [`probe`]: SMTP probes, one task per address, and the resolution of DNS-named hosts, and
//!   [`reputation`]: DNS blocklist lookups of the sites' egress addresses, both reporting to
//! - [`health`]: the sole owner of up/down decisions, drains and what a listing does (demotion),
//!   which on every change builds an
//! - [`answer`] snapshot (pure) and publishes it atomically to
//! - [`dns`]: the sockets, which read the current snapshot once per query (zone transfers and
//!   TSIG-signed queries through [`transfer`], which also sends NOTIFY), and
//! - [`admin`]: the operator's [`Control`](admin::Control), and status, drain, reload and
//!   metrics over HTTP, and last
//! - [`cluster`]: the other instances serving the zone, reached through their admin APIs and
//!   acting through this one's `Control` (drains and reloads delivered to all, views
//!   compared); the admin API knows it only as its [`Peers`](admin::Peers) hook.
//!
//! Beside the flow: [`metrics`] (dns and health write to it, admin serves it), [`events`] (what
//! happened: health and admin write to it, admin serves it, `state_dir/events.jsonl` keeps it),
//! [`state`] (what is kept across restarts — drains, stamped by [`state::hlc`], last known
//! addresses — in a locked folder),
//! [`connections`] (what a TCP client may hold). [`server`] wires them together; [`cli`] is the
//! command line.
//!
//! Threads: the DNS UDP sockets each have an OS thread; the health task, all probes and the
//! blocklist lookups share one thread and a single-threaded runtime; the events file has a
//! writer thread; TCP DNS, admin HTTP and the cluster's peer task run on the main
//! multi-threaded runtime.

#![forbid(unsafe_code)]

pub mod admin;
pub mod answer;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod dane;
pub mod dns;
pub mod dnssec;
pub mod events;
pub mod health;
pub mod loaded;
pub mod metrics;
pub mod network_text;
pub mod probe;
pub mod reputation;
pub mod server;
pub mod state;
pub mod topology;
pub mod transfer;
pub mod wire;
pub mod zone;

#[cfg(test)]
mod test_support;
