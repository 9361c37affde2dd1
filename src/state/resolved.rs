//! The addresses each DNS-named host last resolved to: `site/host target address...` per line.
//! At start they stand in for a name that does not resolve (resolver down at boot), so a site
//! is not left without relays; they are probed like any address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// The file name inside `server.state_dir`.
pub(crate) const FILE_NAME: &str = "resolved-hosts";

/// Last known addresses, by lower-case `site/host`, with the name they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    entries: BTreeMap<String, (String, Vec<IpAddr>)>,
}

impl Resolved {
    /// Reads the file (never through a link, only a regular file); a missing or unreadable
    /// file, or bad lines, only lose what they held (described in the second value, a line by
    /// its number and length, never its text).
    pub(crate) fn read(path: &Path) -> (Self, Vec<String>) {
        match super::file::read(path) {
            Ok(Some(bytes)) => Self::parse(&bytes),
            Ok(None) => (Self::default(), Vec::new()),
            Err(e) => (Self::default(), vec![format!("cannot read it: {e}")]),
        }
    }

    fn parse(bytes: &[u8]) -> (Self, Vec<String>) {
        let mut resolved = Self::default();
        let mut dropped = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(key), Some(target)) = (words.next(), words.next()) else {
                dropped.push(format!("line {} ({} bytes): too short", i + 1, raw.len()));
                continue;
            };
            let addresses: Result<Vec<IpAddr>, _> = words.map(str::parse).collect();
            match addresses {
                Ok(a) if !a.is_empty() && key.contains('/') => {
                    resolved
                        .entries
                        .insert(key.to_ascii_lowercase(), (target.to_ascii_lowercase(), a));
                }
                _ => dropped.push(format!(
                    "line {} ({} bytes): not site/host name addresses",
                    i + 1,
                    raw.len()
                )),
            }
        }
        (resolved, dropped)
    }

    /// The last addresses of `key`, if they came from `target`.
    pub(crate) fn get(&self, key: &str, target: &str) -> Option<&[IpAddr]> {
        let (t, a) = self.entries.get(&key.to_ascii_lowercase())?;
        t.eq_ignore_ascii_case(target).then_some(a.as_slice())
    }

    /// Records `key`'s addresses from `target`; whether anything changed.
    pub(crate) fn set(&mut self, key: &str, target: &str, addresses: &[IpAddr]) -> bool {
        let entry = (target.to_ascii_lowercase(), addresses.to_vec());
        self.entries.insert(key.to_ascii_lowercase(), entry.clone()) != Some(entry)
    }

    /// The file's text.
    pub(crate) fn text(&self) -> String {
        let mut text = String::from(
            "# the addresses DNS-named smart hosts last resolved to: site/host name addresses\n",
        );
        for (key, (target, addresses)) in &self.entries {
            text.push_str(&format!("{key} {target}"));
            for a in addresses {
                text.push_str(&format!(" {a}"));
            }
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_known_addresses_round_trip_and_belong_to_their_name() {
        let mut r = Resolved::default();
        let a: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert!(r.set("oxford/mail1", "relay.example.", &a));
        assert!(!r.set("oxford/mail1", "relay.example.", &a));
        let (again, dropped) = Resolved::parse(r.text().as_bytes());
        assert!(dropped.is_empty());
        assert_eq!(again.get("oxford/mail1", "RELAY.example."), Some(&a[..]));
        assert_eq!(
            again.get("oxford/mail1", "other.example."),
            None,
            "the name changed"
        );
        let (_, dropped) = Resolved::parse(b"x/y relay. not-an-ip\n");
        assert_eq!(dropped.len(), 1);
    }
}
