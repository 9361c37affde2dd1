//! smarthostd: health-checked, site-aware DNS for outbound mail.
//!
//! MTAs given a domain as their relay look up its MX records first, rotate among the lowest
//! preference and fall back to higher ones. smarthostd answers a synthetic zone so that each
//! site's pseudo-domain names its own healthy smart hosts first and other sites' after — the
//! fake-zone MX trick, made live by SMTP probes.
//!
//! Data flows one way: config and zone file into a topology; probes and blocklist lookups
//! report to the health task; the health task builds an answer snapshot and publishes it; the
//! DNS sockets and the admin API read it. Imports run the other way round, and never in a
//! circle: each module below imports only from those listed before it, ground floor first.
//!
//! - [`wire`]: DNS wire numbers (types, RCODEs, options) and name forms; `network_text`:
//!   text from the network (relay replies, blocklist reasons, resolver errors) made safe where
//!   it enters; [`state`]: what is kept across restarts — drains, stamped by [`state::hlc`],
//!   last known addresses — in a locked folder, and how the health task writes them (`kept`);
//!   `connections`: what a TCP client may hold; `resolver`: the stub resolver the probes, the
//!   blocklist lookups and `explain` share. These import nothing of the crate.
//! - [`events`]: what happened, kept in `state_dir/events.jsonl`; `dane`: TLSA records and
//!   the check a DANE sender makes of a relay's certificate chain.
//! - [`config`]: the TOML file, strict and validated (it holds pinned relays' `dane`
//!   records); [`probe`]: SMTP probes, one task per address, and the resolution of DNS-named
//!   hosts.
//! - [`dnssec`]: keys and signing, set up by the config; [`topology`]: the config's sites and
//!   hosts, indexed; `reputation`: DNS blocklist lookups of the sites' egress addresses.
//! - [`zone`]: the static zone file, checked against the topology.
//! - [`answer`]: the pure build of a [`Snapshot`](answer::Snapshot) of prepared answers from
//!   topology, zone, keys and a health view.
//! - [`metrics`]: the counters; it imports `answer` because a scrape reads the current
//!   snapshot's warm-answer counters rather than keeping a copy. [`loaded`]: a config, its zone
//!   and topology, its keys and its probes' TLS settings, checked together by a trial
//!   [`answer`] build before anything is served from them.
//! - [`health`]: the sole owner of up/down decisions, drains and what a listing does
//!   (demotion); it imports `answer` because it is the one that builds and publishes each
//!   snapshot. [`transfer`]: zone transfers (AXFR/IXFR) and TSIG-signed queries answered from
//!   a snapshot, and NOTIFY to the secondaries when a published one changes what they hold.
//!   [`dns`]: the sockets, which read the current snapshot once per query and hand transfers
//!   and TSIG-signed queries to `transfer`.
//! - [`admin`]: the operator's [`Control`](admin::Control), and status, drain, reload and
//!   metrics over HTTP.
//! - [`cluster`]: the other instances serving the zone, reached through their admin APIs and
//!   acting through this one's `Control` (drains and reloads delivered to all, views
//!   compared); the admin API knows it only as its [`Peers`](admin::Peers) hook.
//! - [`server`] wires them together; [`cli`] is the command line, and `main.rs` calls it.
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
pub(crate) mod connections;
pub(crate) mod dane;
pub mod dns;
pub mod dnssec;
pub mod events;
pub mod health;
pub mod loaded;
pub mod metrics;
pub(crate) mod network_text;
pub mod probe;
pub(crate) mod reputation;
mod resolver;
pub mod server;
pub mod state;
pub mod topology;
pub mod transfer;
pub mod wire;
pub mod zone;

#[cfg(test)]
mod test_support;
