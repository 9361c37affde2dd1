//! Integration tests: the real server in-process on port 0, real SMTP listeners on loopback,
//! real DNS queries over UDP and TCP.

mod abuse;
mod addresses;
mod admin;
mod answers;
mod blocklist;
mod config;
mod dnssec;
mod dnssec_cli;
mod events;
mod fake_smtp;
mod honest;
mod limits;
mod monitoring;
mod operator;
mod package;
mod probes;
mod promql;
mod protocol;
mod reputation;
mod support;
mod views;
