//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018), as BIND, Knot, NSD and
//! PowerDNS make them: any instance that holds the same secret accepts the others' cookies.
//!
//! A server cookie is version 1, three reserved zero bytes, a 32-bit timestamp and the
//! SipHash-2-4 of client cookie | version | reserved | timestamp | client address, keyed with
//! the secret. It proves that the client received an earlier answer at its address, which a
//! spoofed query cannot: such queries are exempt from response rate limiting.
//!
//! A query without a good server cookie is answered as any other, with a fresh cookie
//! (RFC 7873 section 5.2.3): BADCOOKIE would only make a client that lost its cookie ask twice.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use siphasher::sip::SipHasher24;
use subtle::ConstantTimeEq;

use crate::metrics::CookieSeen;
use crate::topology::canonical_ip;

/// The length of a client cookie (RFC 7873 section 4).
pub const CLIENT_LEN: usize = 8;
/// The length of the server cookies we make and check (RFC 9018 section 4).
pub const SERVER_LEN: usize = 16;
/// The COOKIE option's data in our responses: the client's cookie, then ours.
pub const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;
/// The one server cookie version there is (RFC 9018 section 4.1).
const VERSION: u8 = 1;
/// A server cookie older than this is no longer accepted (RFC 9018 section 4.3).
const MAX_AGE_SECS: i64 = 3600;
/// A server cookie from up to this far in the future is accepted: another instance's clock.
const MAX_SKEW_SECS: i64 = 300;
/// A valid server cookie older than this is replaced by a fresh one (RFC 9018 section 4.3).
const RENEW_AFTER_SECS: i64 = 1800;

/// A COOKIE option as a client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The client cookie, echoed in the response.
    pub client: [u8; CLIENT_LEN],
    /// The server cookie the client holds from an earlier answer, if any.
    pub server: Presented,
}

/// The server cookie part of a client's COOKIE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// None: the client has no cookie of ours yet.
    None,
    /// 16 bytes, the length RFC 9018 cookies have: checked.
    Standard([u8; SERVER_LEN]),
    /// 8 to 32 bytes of another length: not one we made, so not valid.
    Other,
}

/// The server secrets: the first signs new cookies, every one is accepted (for rotation).
pub struct Cookies {
    keys: Box<[SipHasher24]>,
    /// Seconds since the Unix epoch, modulo 2^32 (RFC 9018 uses serial number arithmetic).
    clock: fn() -> u32,
}

impl fmt::Debug for Cookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secrets never reach a log.
        write!(f, "Cookies({} secrets)", self.keys.len())
    }
}

/// What the response carries for a query's cookie, and what the cookie was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReply {
    /// Whether the query's server cookie was valid, for rate limiting and metrics.
    pub seen: CookieSeen,
    /// The COOKIE option's data: the client cookie and our server cookie.
    pub data: [u8; REPLY_LEN],
}

impl Cookies {
    /// Cookies made with `secrets[0]`, accepted with any of them; with none, a random secret of
    /// this process alone.
    pub fn new(secrets: &[[u8; 16]]) -> std::io::Result<Self> {
        Self::with_clock(secrets, unix_now)
    }

    /// As [`Cookies::new`], with the time taken from `clock` (tests and fuzzing fix it).
    pub fn with_clock(secrets: &[[u8; 16]], clock: fn() -> u32) -> std::io::Result<Self> {
        let keys = if secrets.is_empty() {
            let mut random = [0u8; 16];
            getrandom::fill(&mut random).map_err(std::io::Error::other)?;
            vec![SipHasher24::new_with_key(&random)]
        } else {
            secrets.iter().map(SipHasher24::new_with_key).collect()
        };
        Ok(Self {
            keys: keys.into_boxed_slice(),
            clock,
        })
    }

    /// The response's cookie for `cookie` from `client`, now.
    pub fn reply(&self, cookie: &Cookie, client: IpAddr) -> CookieReply {
        self.reply_at(cookie, client, (self.clock)())
    }

    /// The response's cookie for `cookie` from `client` at `now` (seconds since the epoch,
    /// modulo 2^32).
    pub fn reply_at(&self, cookie: &Cookie, client: IpAddr, now: u32) -> CookieReply {
        let client = canonical_ip(client);
        let mut data = [0u8; REPLY_LEN];
        data[..CLIENT_LEN].copy_from_slice(&cookie.client);
        let (seen, keep) = match &cookie.server {
            Presented::None => (CookieSeen::ClientOnly, None),
            Presented::Other => (CookieSeen::Invalid, None),
            Presented::Standard(server) => match self.check(&cookie.client, server, client, now) {
                // Kept while young, and only if the current secret made it: a cookie of a
                // retired secret is replaced before that secret is dropped.
                Some((0, age))
                    if (0..RENEW_AFTER_SECS).contains(&age) && server[1..4] == [0; 3] =>
                {
                    (CookieSeen::Valid, Some(server))
                }
                Some(_) => (CookieSeen::Valid, None),
                None => (CookieSeen::Invalid, None),
            },
        };
        match keep {
            Some(server) => data[CLIENT_LEN..].copy_from_slice(server),
            None => {
                let server = self.make(&cookie.client, client, now);
                data[CLIENT_LEN..].copy_from_slice(&server);
            }
        }
        CookieReply { seen, data }
    }

    /// Which secret made `server` and how old it is, if one did and it is recent.
    fn check(
        &self,
        client_cookie: &[u8; CLIENT_LEN],
        server: &[u8; SERVER_LEN],
        client: IpAddr,
        now: u32,
    ) -> Option<(usize, i64)> {
        if server[0] != VERSION {
            return None;
        }
        let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        // Serial number arithmetic (RFC 1982): the distance, whichever way it wraps.
        let age = i64::from(now.wrapping_sub(stamp) as i32);
        if !(-MAX_SKEW_SECS..=MAX_AGE_SECS).contains(&age) {
            return None;
        }
        let header: &[u8; 8] = server[..8].try_into().expect("8 bytes");
        self.keys
            .iter()
            .position(|key| {
                let hash = digest(key, client_cookie, header, client);
                bool::from(hash.ct_eq(&server[8..]))
            })
            .map(|i| (i, age))
    }

    /// A fresh server cookie, made with the first secret.
    fn make(&self, client_cookie: &[u8; CLIENT_LEN], client: IpAddr, now: u32) -> [u8; SERVER_LEN] {
        let mut server = [0u8; SERVER_LEN];
        server[0] = VERSION;
        server[4..8].copy_from_slice(&now.to_be_bytes());
        let header: [u8; 8] = server[..8].try_into().expect("8 bytes");
        server[8..].copy_from_slice(&digest(&self.keys[0], client_cookie, &header, client));
        server
    }
}

/// SipHash-2-4 of client cookie | version | reserved | timestamp | client address, in the byte
/// order RFC 9018's test vectors show (the 64-bit result little-endian).
fn digest(
    key: &SipHasher24,
    client_cookie: &[u8; CLIENT_LEN],
    header: &[u8; 8],
    client: IpAddr,
) -> [u8; 8] {
    let mut input = [0u8; 32];
    input[..8].copy_from_slice(client_cookie);
    input[8..16].copy_from_slice(header);
    let len = match client {
        IpAddr::V4(a) => {
            input[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            input[16..32].copy_from_slice(&a.octets());
            32
        }
    };
    key.hash(&input[..len]).to_le_bytes()
}

/// Seconds since the Unix epoch, modulo 2^32.
fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    fn presented(option: &str) -> Cookie {
        let bytes: [u8; 24] = hex(option);
        Cookie {
            client: bytes[..8].try_into().unwrap(),
            server: Presented::Standard(bytes[8..].try_into().unwrap()),
        }
    }

    const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    // The test vectors of RFC 9018, appendix A.

    #[test]
    fn a1_learning_a_new_server_cookie() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let cookie = Cookie {
            client: hex("2464c4abcf10c957"),
            server: Presented::None,
        };
        let reply = cookies.reply_at(&cookie, "198.51.100.100".parse().unwrap(), 1_559_731_985);
        assert_eq!(reply.seen, CookieSeen::ClientOnly);
        assert_eq!(
            reply.data,
            hex::<24>("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    #[test]
    fn a2_the_same_client_learning_a_renewed_server_cookie() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let cookie = presented("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        let client = "198.51.100.100".parse().unwrap();
        // 40 minutes later: valid, and past the half hour after which it is renewed.
        let reply = cookies.reply_at(&cookie, client, 1_559_734_385);
        assert_eq!(reply.seen, CookieSeen::Valid);
        assert_eq!(
            reply.data,
            hex::<24>("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
        // Ten minutes after it was made, the same cookie is kept.
        let reply = cookies.reply_at(&cookie, client, 1_559_731_985 + 600);
        assert_eq!(reply.seen, CookieSeen::Valid);
        assert_eq!(
            reply.data,
            hex::<24>("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    #[test]
    fn a3_another_client_with_reserved_bits_set_by_another_server() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let cookie = presented("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let client = "203.0.113.203".parse().unwrap();
        // The appendix's server answers 1 h 52 min after the cookie was made; within the hour
        // RFC 9018 section 4.3 allows, the cookie is valid, and renewed with zero reserved bits.
        let made = 1_559_727_985;
        let reply = cookies.reply_at(&cookie, client, made + 60);
        assert_eq!(reply.seen, CookieSeen::Valid);
        assert_eq!(&reply.data[8..12], &[1, 0, 0, 0]);
        let reply = cookies.reply_at(&cookie, client, 1_559_734_700);
        assert_eq!(
            reply.data,
            hex::<24>("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
    }

    #[test]
    fn a4_ipv6_query_with_a_rolled_over_secret() {
        let old: [u8; 16] = hex("dd3bdf9344b678b185a6f5cb60fca715");
        let new: [u8; 16] = hex("445536bcd2513298075a5d379663c962");
        let cookie = presented("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let client = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let now = 1_559_741_961;
        let only_new = Cookies::new(&[new]).unwrap();
        assert_eq!(
            only_new.reply_at(&cookie, client, now).seen,
            CookieSeen::Invalid
        );
        let rotating = Cookies::new(&[new, old]).unwrap();
        let reply = rotating.reply_at(&cookie, client, now);
        assert_eq!(reply.seen, CookieSeen::Valid);
        // Made with the retired secret: replaced at once with one of the new secret.
        assert_eq!(
            reply.data,
            hex::<24>("22681ab97d52c298010000005cf7c609a6bb79d16625507a")
        );
    }

    #[test]
    fn an_hour_old_or_five_minutes_ahead_is_the_limit() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let cookie = presented("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        let client = "198.51.100.100".parse().unwrap();
        let made: u32 = 1_559_731_985;
        let seen = |now: u32| cookies.reply_at(&cookie, client, now).seen;
        assert_eq!(seen(made + 3600), CookieSeen::Valid);
        assert_eq!(seen(made + 3601), CookieSeen::Invalid, "stale");
        assert_eq!(seen(made - 300), CookieSeen::Valid);
        assert_eq!(seen(made - 301), CookieSeen::Invalid, "from the future");
        // Another address, another cookie, a flipped bit: not ours.
        let elsewhere = "198.51.100.101".parse().unwrap();
        assert_eq!(
            cookies.reply_at(&cookie, elsewhere, made).seen,
            CookieSeen::Invalid
        );
        let mut forged = cookie;
        forged.client[0] ^= 1;
        assert_eq!(
            cookies.reply_at(&forged, client, made).seen,
            CookieSeen::Invalid
        );
        let other = Cookie {
            server: Presented::Other,
            ..cookie
        };
        assert_eq!(
            cookies.reply_at(&other, client, made).seen,
            CookieSeen::Invalid
        );
    }

    #[test]
    fn timestamps_wrap_in_2106() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = Cookie {
            client: [7; 8],
            server: Presented::None,
        };
        let before_wrap = u32::MAX - 10;
        let issued = cookies.reply_at(&first, client, before_wrap);
        let again = presented(
            &issued
                .data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        assert_eq!(cookies.reply_at(&again, client, 50).seen, CookieSeen::Valid);
    }

    #[test]
    fn an_ipv4_mapped_source_is_its_ipv4_address() {
        let cookies = Cookies::new(&[hex(SECRET)]).unwrap();
        let cookie = Cookie {
            client: hex("2464c4abcf10c957"),
            server: Presented::None,
        };
        let mapped = "::ffff:198.51.100.100".parse().unwrap();
        let reply = cookies.reply_at(&cookie, mapped, 1_559_731_985);
        assert_eq!(
            reply.data,
            hex::<24>("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    #[test]
    fn without_secrets_each_start_has_its_own() {
        let a = Cookies::new(&[]).unwrap();
        let b = Cookies::new(&[]).unwrap();
        let cookie = Cookie {
            client: [1; 8],
            server: Presented::None,
        };
        let client = "192.0.2.1".parse().unwrap();
        let from_a = a.reply_at(&cookie, client, 1000);
        let again = presented(
            &from_a
                .data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        assert_eq!(a.reply_at(&again, client, 1001).seen, CookieSeen::Valid);
        assert_eq!(b.reply_at(&again, client, 1001).seen, CookieSeen::Invalid);
        assert_eq!(format!("{a:?}"), "Cookies(1 secrets)");
    }
}
