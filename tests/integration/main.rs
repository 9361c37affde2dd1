//! Integration tests: the real server in-process on port 0, real SMTP listeners on loopback,
//! real DNS queries over UDP and TCP.

mod abuse;
mod addresses;
mod admin;
mod admin_security;
mod answers;
mod blocklist;
mod cluster;
mod config;
mod control_socket;
mod cookies;
mod dane;
mod dane_answers;
mod dane_config;
mod dnssec;
mod dnssec_cli;
mod events;
mod exit_codes;
mod fake_smtp;
mod fake_tls;
mod honest;
mod hostile_relays;
mod limits;
mod log_forging;
mod monitoring;
mod operator;
mod package;
mod probe_source;
mod probes;
mod promql;
mod protocol;
mod reputation;
mod state_files;
mod support;
mod tlsa_command;
mod views;
