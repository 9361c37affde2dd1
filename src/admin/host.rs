//! `Host` and `Origin` values read strictly, the one place they enter the program: a host
//! (a name in lower case without its trailing dot, or an address) and an optional port
//! (RFC 9110 §7.2, RFC 3986 §3.2), or nothing. No user information (`evil.example@127.0.0.1`),
//! no path, no bare IPv6 address, no zone index, no empty port: what a browser never sends is
//! not guessed at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host part of a `Host` value or of an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostPart {
    /// A host name, lower case, without the trailing dot.
    Name(String),
    /// An IPv4 address, or an IPv6 address written in brackets.
    Ip(IpAddr),
}

/// A host and the port written after it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Authority {
    /// The host.
    pub(super) host: HostPart,
    /// The port, when written.
    pub(super) port: Option<u16>,
}

/// Reads `text` as `host [":" port]`; `None` when it is anything else.
pub(super) fn parse_authority(text: &str) -> Option<Authority> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        (HostPart::Ip(IpAddr::V6(ip)), after)
    } else {
        let end = text.find(':').unwrap_or(text.len());
        let (host, after) = text.split_at(end);
        let host = match host.parse::<Ipv4Addr>() {
            Ok(ip) => HostPart::Ip(IpAddr::V4(ip)),
            Err(_) => HostPart::Name(crate::config::host_name(host)?),
        };
        (host, after)
    };
    let port = match port {
        "" => None,
        p => {
            let digits = p.strip_prefix(':')?;
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse().ok()?)
        }
    };
    Some(Authority { host, port })
}

/// The scheme of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// `http`: this listener's own.
    Http,
    /// `https`: a TLS reverse proxy in front of it.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// A serialized origin (RFC 6454 §6.2): `scheme "://" host [":" port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    scheme: Scheme,
    authority: Authority,
}

/// Reads an `Origin` value; `None` for `null` (sandboxed frames, `file:` pages, cross-origin
/// redirects), other schemes, and anything malformed.
pub(super) fn parse_origin(text: &str) -> Option<Origin> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        return None;
    };
    Some(Origin {
        scheme,
        authority: parse_authority(rest)?,
    })
}

impl Origin {
    /// Whether this is the origin of pages served under `host`: the same host and the same
    /// port, a port left out being the scheme's default (browsers leave it out of both).
    pub(super) fn is_of(&self, host: &Authority) -> bool {
        let default = self.scheme.default_port();
        self.authority.host == host.host
            && self.authority.port.unwrap_or(default) == host.port.unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, port: Option<u16>) -> Option<Authority> {
        Some(Authority {
            host: HostPart::Name(n.into()),
            port,
        })
    }

    fn ip(ip: &str, port: Option<u16>) -> Option<Authority> {
        Some(Authority {
            host: HostPart::Ip(ip.parse().unwrap()),
            port,
        })
    }

    #[test]
    fn names_are_lower_case_without_the_trailing_dot() {
        assert_eq!(parse_authority("localhost"), name("localhost", None));
        assert_eq!(
            parse_authority("LocalHost.:9000"),
            name("localhost", Some(9000))
        );
        assert_eq!(
            parse_authority("SMARTHOSTD.example.org"),
            name("smarthostd.example.org", None)
        );
    }

    #[test]
    fn addresses_are_addresses_and_ipv6_needs_brackets() {
        assert_eq!(
            parse_authority("127.0.0.1:8053"),
            ip("127.0.0.1", Some(8053))
        );
        assert_eq!(parse_authority("[::1]:8053"), ip("::1", Some(8053)));
        assert_eq!(parse_authority("[::1]"), ip("::1", None));
        assert_eq!(parse_authority("[2001:DB8::1]"), ip("2001:db8::1", None));
        for bad in [
            "::1",
            "::1:8053",
            "[::1",
            "[::1]x",
            "[fe80::1%25eth0]",
            "[127.0.0.1]",
        ] {
            assert_eq!(parse_authority(bad), None, "{bad}");
        }
    }

    #[test]
    fn user_information_paths_and_odd_ports_are_not_hosts() {
        for bad in [
            "",
            ":8053",
            "evil.example@127.0.0.1",
            "127.0.0.1@evil.example",
            "user:pass@localhost",
            "localhost/",
            "localhost:",
            "localhost:80:80",
            "localhost:+80",
            "localhost:65536",
            "localhost:123456",
            "local host",
            "localhost\r\nX: y",
            "http://localhost",
            "evil.example\\@127.0.0.1",
            "127.0.0.01",
        ] {
            assert_eq!(parse_authority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_origin_matches_its_own_host_and_port() {
        let host = parse_authority("localhost:9000").unwrap();
        assert!(parse_origin("http://localhost:9000").unwrap().is_of(&host));
        assert!(parse_origin("HTTP://LOCALHOST:9000").unwrap().is_of(&host));
        assert!(!parse_origin("http://localhost:9001").unwrap().is_of(&host));
        assert!(
            !parse_origin("http://evil.example:9000")
                .unwrap()
                .is_of(&host)
        );
        // Default ports are left out of both by browsers.
        let bare = parse_authority("smarthostd.example.org").unwrap();
        assert!(
            parse_origin("https://smarthostd.example.org")
                .unwrap()
                .is_of(&bare)
        );
        assert!(
            parse_origin("http://smarthostd.example.org")
                .unwrap()
                .is_of(&bare)
        );
        assert!(
            !parse_origin("https://smarthostd.example.org:8443")
                .unwrap()
                .is_of(&bare)
        );
        let v6 = parse_authority("[::1]:8053").unwrap();
        assert!(parse_origin("http://[::1]:8053").unwrap().is_of(&v6));
        assert!(!parse_origin("http://127.0.0.1:8053").unwrap().is_of(&v6));
    }

    #[test]
    fn null_and_other_schemes_are_no_origin() {
        for bad in [
            "null",
            "file://",
            "ftp://localhost",
            "http://",
            "http://localhost/",
            "http://evil.example@localhost",
            "localhost:8053",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }
}
