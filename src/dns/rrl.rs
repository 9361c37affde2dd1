//! Response rate limiting for UDP, in the manner of BIND and Knot RRL: responses per second
//! per client prefix (/24, /56), and every Nth response over the limit "slips" out truncated so
//! that a real client behind a spoofed flood can still retry over TCP.
//!
//! The table has a fixed size and no locks: each slot is one atomic word holding a tag of the
//! prefix, the second it counts, and the count. Prefixes that collide share a slot only until
//! one of them takes it over, which can only err towards answering.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ipnet::IpNet;

use crate::config::RateLimitConfig;
use crate::topology::canonical_ip;

/// Slots in the table (a power of two).
const SLOTS: usize = 1 << 16;

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit, or exempt: send the response.
    Send,
    /// Send a truncated response instead, so that a real client retries over TCP.
    Slip,
    /// Over the limit: send nothing.
    Drop,
}

/// The shared table.
pub struct RateLimiter {
    slots: Box<[AtomicU64]>,
    rate: u64,
    slip: u64,
    v4_prefix: u8,
    v6_prefix: u8,
    exempt: Vec<IpNet>,
    epoch: Instant,
}

impl RateLimiter {
    /// A limiter for `config`, or `None` when it is off.
    pub fn new(config: &RateLimitConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            rate: u64::from(config.responses_per_second),
            slip: u64::from(config.slip),
            v4_prefix: config.ipv4_prefix,
            v6_prefix: config.ipv6_prefix,
            exempt: config.exempt.clone(),
            epoch: Instant::now(),
        })
    }

    /// The second since start that `now` falls in, as [`RateLimiter::check_at`] takes it.
    pub fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// Counts one response to `client` at `second` ([`RateLimiter::second`]) and says whether
    /// to send it.
    pub fn check_at(&self, client: IpAddr, second: u64) -> Verdict {
        let client = canonical_ip(client);
        if self.exempt.iter().any(|n| n.contains(&client)) {
            return Verdict::Send;
        }
        let key = self.prefix_key(client);
        let slot = &self.slots[(key as usize) & (SLOTS - 1)];
        let tag = (key >> 16) & 0xFF_FFFF;
        let second = second & 0xFFFF;
        let mut current = slot.load(Ordering::Relaxed);
        let count = loop {
            let (t, s, c) = unpack(current);
            let count = if t == tag && s == second { c + 1 } else { 1 };
            let next = pack(tag, second, count.min(0xFF_FFFF));
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break count,
                Err(seen) => current = seen,
            }
        };
        if count <= self.rate {
            Verdict::Send
        } else if self.slip > 0 && (count - self.rate).is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    fn prefix_key(&self, addr: IpAddr) -> u64 {
        let bits = match addr {
            IpAddr::V4(a) => {
                let keep = u32::MAX
                    .checked_shl(32 - u32::from(self.v4_prefix))
                    .unwrap_or(0);
                u128::from(u32::from(a) & keep)
            }
            IpAddr::V6(a) => {
                let keep = u128::MAX
                    .checked_shl(128 - u32::from(self.v6_prefix))
                    .unwrap_or(0);
                (u128::from(a) & keep) ^ (1u128 << 126)
            }
        };
        // A 64-bit mix (splitmix64 finalizer) of the prefix, so that nearby prefixes spread.
        let mut x = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17);
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

fn pack(tag: u64, second: u64, count: u64) -> u64 {
    (tag << 40) | (second << 24) | count
}

fn unpack(v: u64) -> (u64, u64, u64) {
    (v >> 40, (v >> 24) & 0xFFFF, v & 0xFF_FFFF)
}

/// Turns a response in `out` into its truncated form: header and question only, TC set.
pub fn truncate_to_question(out: &mut Vec<u8>, question_len: usize) {
    let end = (12 + question_len).min(out.len());
    out.truncate(end);
    if out.len() >= 12 {
        out[2] |= 0x02;
        out[6..12].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            enabled: true,
            responses_per_second: rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec!["127.0.0.0/8".parse().unwrap()],
        })
        .unwrap()
    }

    #[test]
    fn a_prefix_over_its_rate_is_limited_and_every_nth_slips() {
        let rrl = limiter(5, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_prefix: IpAddr = "192.0.2.200".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..9)
            .map(|i| rrl.check_at(if i % 2 == 0 { a } else { same_prefix }, 7))
            .collect();
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // Another prefix has its own budget; the next second starts afresh.
        assert_eq!(
            rrl.check_at("198.51.100.1".parse().unwrap(), 7),
            Verdict::Send
        );
        assert_eq!(rrl.check_at(a, 8), Verdict::Send);
    }

    #[test]
    fn exempt_clients_and_slip_zero() {
        let rrl = limiter(1, 0);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..10).all(|_| rrl.check_at(local, 1) == Verdict::Send));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(rrl.check_at(v6, 1), Verdict::Send);
        assert_eq!(
            rrl.check_at("2001:db8::ffff".parse().unwrap(), 1),
            Verdict::Drop,
            "same /56"
        );
        assert_eq!(
            rrl.check_at("2001:db8:0:100::1".parse().unwrap(), 1),
            Verdict::Send,
            "another /56"
        );
    }

    #[test]
    fn truncation_keeps_header_and_question() {
        let mut out = vec![
            0x12, 0x34, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, b'a', 0, 0, 1, 0, 1, 0xde, 0xad,
        ];
        truncate_to_question(&mut out, 7);
        assert_eq!(out.len(), 19);
        assert_eq!(out[2] & 0x02, 0x02);
        assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
