//! The DNSBL query form (RFC 5782): an address's reversed octets (IPv4) or nibbles (IPv6)
//! under the list's zone, and what the A records of the answer mean.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::ProtoError;
use hickory_proto::rr::Name;
use ipnet::Ipv4Net;

use super::canonical;
use crate::config::reputation::ERROR_CODES;

/// `7.100.51.198.zen.spamhaus.org.` for 198.51.100.7; 32 nibbles, lowest first, for IPv6.
pub(crate) fn query_name(address: IpAddr, zone: &Name) -> Result<Name, ProtoError> {
    let mut text = String::with_capacity(64 + zone.len());
    match canonical(address) {
        IpAddr::V4(v4) => {
            for octet in v4.octets().iter().rev() {
                let _ = write!(text, "{octet}.");
            }
        }
        IpAddr::V6(v6) => {
            for byte in v6.octets().iter().rev() {
                let _ = write!(text, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
        }
    }
    Name::from_ascii(text.trim_end_matches('.'))?.append_domain(zone)
}

/// What the A records of a positive answer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// Listed, with this code.
    Listed(Ipv4Addr),
    /// An error code, or an answer outside the list's `listed` networks: not a verdict.
    Error(Ipv4Addr),
}

/// The meaning of `codes` (not empty) on a list whose listings are `listed`. One error code
/// makes the whole answer an error: a list that refuses a query says so for every record.
pub(crate) fn meaning(codes: &[Ipv4Addr], listed: &[Ipv4Net]) -> Meaning {
    let is_listing = |c: &Ipv4Addr| {
        !ERROR_CODES.iter().any(|e| e.contains(c)) && listed.iter().any(|n| n.contains(c))
    };
    match codes.iter().find(|c| !is_listing(c)) {
        Some(&code) => Meaning::Error(code),
        None => Meaning::Listed(codes.iter().copied().min().unwrap_or(Ipv4Addr::UNSPECIFIED)),
    }
}

/// What an error code means, in words.
pub(crate) fn describe_error(code: Ipv4Addr) -> String {
    let why = match code.octets() {
        [127, 255, 255, 252] => "the list says the zone name is mistyped",
        [127, 255, 255, 254] => {
            "the list refuses queries through public or open resolvers: set reputation.resolver to your own"
        }
        [127, 255, 255, 255] => "the list says too many queries came from this resolver",
        [127, 255, 255, _] => "an error code of the list",
        [127, 0, 0, 1] => {
            "127.0.0.1 is never a listing (RFC 5782); a list that shuts down answers it to everything"
        }
        _ => "an answer outside the list's `listed` networks",
    };
    format!("answer {code}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("zen.example.org.").unwrap()
    }

    #[test]
    fn ipv4_octets_are_reversed() {
        let name = query_name("198.51.100.7".parse().unwrap(), &zone()).unwrap();
        assert_eq!(name.to_ascii(), "7.100.51.198.zen.example.org.");
        let mapped = query_name("::ffff:198.51.100.7".parse().unwrap(), &zone()).unwrap();
        assert_eq!(mapped, name, "an IPv4-mapped address is asked as IPv4");
    }

    #[test]
    fn ipv6_nibbles_are_reversed_lowest_first() {
        let name = query_name("2001:db8::25".parse().unwrap(), &zone()).unwrap();
        assert_eq!(
            name.to_ascii(),
            "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example.org."
        );
        assert_eq!(name.num_labels(), 32 + 3);
    }

    #[test]
    fn error_codes_and_strangers_are_never_a_listing() {
        let any: Vec<Ipv4Net> = vec!["127.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            meaning(&[ip("127.0.0.2")], &any),
            Meaning::Listed(ip("127.0.0.2"))
        );
        assert_eq!(
            meaning(&[ip("127.0.0.4"), ip("127.0.0.2")], &any),
            Meaning::Listed(ip("127.0.0.2"))
        );
        for code in [
            "127.255.255.254",
            "127.255.255.255",
            "127.255.255.252",
            "127.0.0.1",
            "10.0.0.2",
        ] {
            assert_eq!(
                meaning(&[ip(code)], &any),
                Meaning::Error(ip(code)),
                "{code}"
            );
        }
        assert_eq!(
            meaning(&[ip("127.0.0.2"), ip("127.255.255.254")], &any),
            Meaning::Error(ip("127.255.255.254"))
        );
        let narrow: Vec<Ipv4Net> = vec!["127.0.0.2/32".parse().unwrap()];
        assert_eq!(
            meaning(&[ip("127.0.0.3")], &narrow),
            Meaning::Error(ip("127.0.0.3"))
        );
        assert!(describe_error(ip("127.255.255.254")).contains("public or open resolvers"));
    }
}
