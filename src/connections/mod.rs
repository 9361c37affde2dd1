//! Bounds on the TCP listeners (DNS over TCP, the admin API), so that no client — idle,
//! half-sent, never reading, or a flood of them — can hold the server's descriptors or lock
//! other clients out.
//!
//! - [`slots`]: a fixed number of connection slots per listener; when all are taken, the
//!   connection that has made no progress for longest is closed to admit the new one (as Knot
//!   and unbound do), so a new client is always served.
//! - [`budget`]: descriptors shared out at start — the process limit raised to its hard limit,
//!   probes and a reserve first, then the listeners' slots — so that a flood on one listener can
//!   never starve the probes that decide the answers.
//! - [`accept`]: accept errors (out of descriptors) back off instead of spinning.

pub(crate) mod accept;
pub(crate) mod budget;
pub(crate) mod slots;

pub(crate) use slots::{Progress, Slots};
