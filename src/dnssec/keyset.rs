//! The zone's keys: every `.key`/`.private` pair in `key_dir`, checked, and which of them are
//! published and which sign at a given time.
//!
//! A problem with a key file is a config error naming that file (and its line where one is to
//! blame): serving with a key set other than the one the operator put there would break
//! validation for every resolver holding a trust anchor. A `.private` that others can read is a
//! warning with the fix.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::key::{Key, parse_stem};
use super::keyfile::{FileProblem, parse_private, parse_public};
use crate::config::ConfigError;

/// The keys of a zone, read from its key folder.
#[derive(Debug, Default)]
pub struct KeySet {
    /// Every key, in file name order.
    pub keys: Vec<Key>,
    /// What `check-config` and the server's start say without refusing the keys.
    pub warnings: Vec<String>,
    /// The key files' names and texts, for telling a reload whether they changed.
    pub fingerprint: u64,
}

/// The keys that sign at one moment: `dnskey` sign the DNSKEY RRset, `zone` everything else.
#[derive(Debug, Default)]
pub struct Signing<'k> {
    /// Keys whose signatures cover the DNSKEY RRset.
    pub dnskey: Vec<&'k Key>,
    /// Keys whose signatures cover every other RRset.
    pub zone: Vec<&'k Key>,
}

impl KeySet {
    /// Reads every key pair in `dir` for the zone `origin`.
    pub fn load(dir: &Path, origin: &Name) -> Result<Self, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::new(
                dir,
                "dnssec.key_dir",
                format!(
                    "cannot read the key folder: {e} (create keys with `smarthostd dnssec keygen`)"
                ),
            )
        })?;
        // stem -> (.key, .private)
        let mut pairs: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| ConfigError::new(dir, "dnssec.key_dir", e.to_string()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('K') {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".key") {
                pairs.entry(stem.to_string()).or_default().0 = Some(path);
            } else if let Some(stem) = name.strip_suffix(".private") {
                pairs.entry(stem.to_string()).or_default().1 = Some(path);
            }
        }
        let mut set = KeySet::default();
        let mut fingerprint = Vec::new();
        for (stem, (public, private)) in pairs {
            let (public, private) = match (public, private) {
                (Some(k), Some(p)) => (k, p),
                (Some(k), None) => {
                    return Err(ConfigError::new(
                        &k,
                        "",
                        format!(
                            "{stem}.private is missing: a key cannot sign without it (or remove the .key file)"
                        ),
                    ));
                }
                (None, Some(p)) => {
                    return Err(ConfigError::new(
                        &p,
                        "",
                        format!("{stem}.key is missing: the public key goes with it"),
                    ));
                }
                (None, None) => continue,
            };
            let key = read_pair(&stem, &public, &private, origin, &mut set.warnings)?;
            fingerprint.push((stem, key.1));
            set.keys.push(key.0);
        }
        if set.keys.is_empty() {
            return Err(ConfigError::new(
                dir,
                "dnssec.key_dir",
                "no keys in the key folder: create one with `smarthostd dnssec keygen`, or use dnssec-keygen or ldns-keygen",
            ));
        }
        set.fingerprint = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(&fingerprint)
        };
        Ok(set)
    }

    /// Warnings about the keys' timing at `now`: nothing signs, or a key signs unpublished.
    pub fn timing_warnings(&self, now: u64) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.signing(now).zone.is_empty() {
            warnings.push(
                "no key is active now (every key's Activate is later, or its Inactive is past): answers carry no signatures, and validating resolvers will refuse them".to_string(),
            );
        }
        for key in &self.keys {
            if key.timing.active(now) && !key.timing.published(now) {
                warnings.push(format!(
                    "{}: the key signs but is not published (Publish later, or Delete past): its signatures cannot be validated",
                    key.file.display()
                ));
            }
        }
        warnings
    }

    /// The keys in the DNSKEY RRset at `now`.
    pub fn published(&self, now: u64) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.timing.published(now))
    }

    /// Which active keys sign what at `now`, algorithm by algorithm (each RRset is signed with
    /// every algorithm in the DNSKEY RRset, RFC 4035 section 2.2): where an algorithm has an
    /// active zone-signing key (256), its key-signing keys (257) sign only the DNSKEY RRset and
    /// its zone-signing keys the rest; a key-signing key alone (a combined key) signs everything.
    pub fn signing(&self, now: u64) -> Signing<'_> {
        let active: Vec<&Key> = self.keys.iter().filter(|k| k.timing.active(now)).collect();
        let mut signing = Signing::default();
        for key in &active {
            let split = active
                .iter()
                .any(|k| k.algorithm == key.algorithm && !k.is_ksk());
            let ksk_of_algorithm = active
                .iter()
                .any(|k| k.algorithm == key.algorithm && k.is_ksk());
            if !split || key.is_ksk() || !ksk_of_algorithm {
                signing.dnskey.push(key);
            }
            if !split || !key.is_ksk() {
                signing.zone.push(key);
            }
        }
        signing
    }

    /// The first key timing event after `now`: the DNSKEY RRset or the signatures change then.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        self.keys
            .iter()
            .filter_map(|k| k.timing.next_event(now))
            .min()
    }
}

/// Reads and checks one pair; returns the key and the texts (for the fingerprint).
fn read_pair(
    stem: &str,
    public: &Path,
    private: &Path,
    origin: &Name,
    warnings: &mut Vec<String>,
) -> Result<(Key, (String, String)), ConfigError> {
    let error = |file: &Path, p: FileProblem| {
        let e = ConfigError::new(file, "", p.message);
        match p.line {
            Some(line) => e.at_line(line),
            None => e,
        }
    };
    let Some((name_origin, name_algorithm, name_tag)) = parse_stem(stem) else {
        return Err(ConfigError::new(
            public,
            "",
            "not a key file name: BIND names them K<zone>.+<algorithm>+<tag>.key (e.g. Ksmarthost.internal.+013+12345.key)",
        ));
    };
    let same_zone =
        Name::from_ascii(&name_origin).is_ok_and(|n| n.to_lowercase() == origin.to_lowercase());
    if !same_zone {
        return Err(ConfigError::new(
            public,
            "",
            format!(
                "a key for {name_origin}, not for the zone {origin}: move it out of the key folder"
            ),
        ));
    }
    let public_text = read_text(public)?;
    let private_text = read_text(private)?;
    match std::fs::metadata(private) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => warnings.push(format!(
            "{} can be read by group or others (mode {:o}): run `chmod 600 {}` (and give it to the user smarthostd runs as)",
            private.display(),
            m.permissions().mode() & 0o777,
            private.display()
        )),
        _ => {}
    }
    let parsed_public = parse_public(&public_text).map_err(|p| error(public, p))?;
    let parsed_private = parse_private(&private_text).map_err(|p| error(private, p))?;
    if parsed_public.owner.to_lowercase() != origin.to_lowercase() {
        return Err(error(
            public,
            FileProblem {
                line: Some(parsed_public.line),
                message: format!(
                    "the DNSKEY is for {}, not for the zone {origin}",
                    parsed_public.owner
                ),
            },
        ));
    }
    let key = Key::from_files(public, &parsed_public, &parsed_private)
        .map_err(|(in_private, p)| error(if in_private { private } else { public }, p))?;
    if key.algorithm.number() != name_algorithm {
        return Err(ConfigError::new(
            public,
            "",
            format!(
                "the file name says algorithm {name_algorithm}, the key is {}",
                key.algorithm.number()
            ),
        ));
    }
    if key.tag != name_tag {
        return Err(ConfigError::new(
            public,
            "",
            format!(
                "the file name says key tag {name_tag}, the key's tag is {}: renamed, or another key's file",
                key.tag
            ),
        ));
    }
    Ok((key, (public_text, private_text)))
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the key file: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ConfigError::new(path, "", "not a text file"))
}
