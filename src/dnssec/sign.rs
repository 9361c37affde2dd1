//! Signing RRsets while a generation is built, through the [`SignatureCache`]: an RRset whose
//! owner, type, TTL and records are unchanged keeps its signatures until they reach their
//! refresh point, so a rebuild after one relay's change signs only what changed.
//!
//! The data signed is built here from the RRset's canonical wire form (RFC 4034 section 3.1.8.1
//! and 6.2, names already lower case): the same bytes are the cache key, so an RRset is put in
//! canonical form once and then only looked up. Tests check every signature with
//! hickory-proto's verifier, which rebuilds the signed data from decoded records.

use std::ops::Range;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::canonical::label_count;
use super::key::Key;
use super::keyset::{KeySet, Signing};
use crate::wire::TYPE_DNSKEY;

/// How far in the past a signature's inception is put: validators whose clock is behind still
/// accept it.
pub(crate) const INCEPTION_SKEW: u64 = 3600;
/// Signatures of RRsets no build has served for this many builds are forgotten.
const KEEP_UNUSED_BUILDS: u64 = 16;

/// The signatures of RRsets, by their canonical content, kept from build to build.
#[derive(Debug, Default)]
pub struct SignatureCache {
    entries: HashMap<Box<[u8]>, Entry, FxBuildHasher>,
    build: u64,
}

#[derive(Debug)]
struct Entry {
    sigs: Vec<Sig>,
    used: u64,
}

#[derive(Debug)]
struct Sig {
    key: u64,
    expiration: u64,
    rdata: Box<[u8]>,
}

impl SignatureCache {
    /// RRsets with signatures held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets what the last builds did not use.
    fn prune(&mut self) {
        let build = self.build;
        self.entries
            .retain(|_, e| e.used + KEEP_UNUSED_BUILDS > build);
    }
}

/// The signature lifetime, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// From the signing time to the expiration.
    pub validity: u64,
    /// A signature with less than this left is made again.
    pub refresh: u64,
}

/// Signs the RRsets of one build at time `now`.
pub struct Signer<'k> {
    signing: Signing<'k>,
    published: Vec<&'k Key>,
    origin: Vec<u8>,
    now: u64,
    lifetime: Lifetime,
    cache: &'k mut SignatureCache,
    key: Vec<u8>,
    data: Vec<u8>,
    rdatas: Vec<Range<usize>>,
    /// Signatures made (not taken from the cache) in this build.
    pub made: usize,
    next_refresh: Option<u64>,
}

impl<'k> Signer<'k> {
    /// A signer for a build at `now` (seconds since the epoch) for the zone `origin` (lower-case
    /// wire form).
    pub fn new(
        keys: &'k KeySet,
        lifetime: Lifetime,
        now: u64,
        origin: &[u8],
        cache: &'k mut SignatureCache,
    ) -> Self {
        cache.build += 1;
        Self {
            signing: keys.signing(now),
            published: keys.published(now).collect(),
            origin: origin.to_vec(),
            now,
            lifetime,
            cache,
            key: Vec::with_capacity(512),
            data: Vec::with_capacity(512),
            rdatas: Vec::with_capacity(64),
            made: 0,
            next_refresh: None,
        }
    }

    /// The DNSKEY records' data of the keys published now.
    pub fn dnskeys(&self) -> impl Iterator<Item = &[u8]> {
        self.published.iter().map(|k| &k.dnskey[..])
    }

    /// The zone's name in wire form: the signer name of every signature.
    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    /// When the first signature served so far reaches its refresh point.
    pub fn next_refresh(&self) -> Option<u64> {
        self.next_refresh
    }

    /// The RRSIG records' data for the RRset of `rtype` at `owner` (lower-case wire form) with
    /// original TTL `ttl` and these records' data (canonical form, any order).
    pub fn sign<'r>(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> impl Iterator<Item = &[u8]> {
        // The canonical RRset: owner, type, TTL, then each record's data, sorted, without
        // duplicates (RFC 4034 section 6.3).
        let (key_bytes, data, ranges) = (&mut self.key, &mut self.data, &mut self.rdatas);
        key_bytes.clear();
        data.clear();
        ranges.clear();
        for r in rdatas {
            let start = data.len();
            data.extend_from_slice(r);
            ranges.push(start..data.len());
        }
        ranges.sort_by(|a, b| data[a.clone()].cmp(&data[b.clone()]));
        ranges.dedup_by(|a, b| data[a.clone()] == data[b.clone()]);
        key_bytes.extend_from_slice(owner);
        key_bytes.extend_from_slice(&rtype.to_be_bytes());
        key_bytes.extend_from_slice(&ttl.to_be_bytes());
        for r in ranges.iter() {
            key_bytes.extend_from_slice(&(r.len() as u16).to_be_bytes());
            key_bytes.extend_from_slice(&data[r.clone()]);
        }
        let keys: &[&Key] = if rtype == TYPE_DNSKEY {
            &self.signing.dnskey
        } else {
            &self.signing.zone
        };
        let build = self.cache.build;
        if !self.cache.entries.contains_key(&self.key[..]) {
            let entry = Entry {
                sigs: Vec::new(),
                used: build,
            };
            self.cache.entries.insert(self.key[..].into(), entry);
        }
        let entry = self
            .cache
            .entries
            .get_mut(&self.key[..])
            .expect("inserted above");
        entry.used = build;
        for (i, key) in keys.iter().enumerate() {
            let fresh =
                |s: &Sig| s.key == key.id && s.expiration > self.now + self.lifetime.refresh;
            match entry.sigs[i..].iter().position(fresh) {
                Some(j) => entry.sigs.swap(i, i + j),
                None => {
                    let sig = make(
                        key,
                        owner,
                        rtype,
                        ttl,
                        &self.rdatas,
                        &self.data,
                        &self.origin,
                        self.now,
                        self.lifetime,
                    );
                    self.made += 1;
                    entry.sigs.retain(|s| s.key != key.id);
                    entry.sigs.insert(i, sig);
                }
            }
            let refresh_at = entry.sigs[i].expiration - self.lifetime.refresh;
            self.next_refresh = Some(self.next_refresh.map_or(refresh_at, |t| t.min(refresh_at)));
        }
        entry.sigs[..keys.len()].iter().map(|s| &s.rdata[..])
    }
}

impl Drop for Signer<'_> {
    fn drop(&mut self) {
        self.cache.prune();
    }
}

/// One RRSIG record's data: the fields, then the signature over them and the RRset.
#[allow(clippy::too_many_arguments)]
fn make(
    key: &Key,
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: &[Range<usize>],
    data: &[u8],
    origin: &[u8],
    now: u64,
    lifetime: Lifetime,
) -> Sig {
    let expiration = now + lifetime.validity;
    let inception = now.saturating_sub(INCEPTION_SKEW);
    let mut rdata = Vec::with_capacity(18 + origin.len() + 64);
    rdata.extend_from_slice(&rtype.to_be_bytes());
    rdata.push(key.algorithm.number());
    rdata.push(label_count(owner));
    rdata.extend_from_slice(&ttl.to_be_bytes());
    // RRSIG times are 32-bit serial numbers (RFC 4034 section 3.1.5).
    rdata.extend_from_slice(&(expiration as u32).to_be_bytes());
    rdata.extend_from_slice(&(inception as u32).to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(origin);
    let mut signed = rdata.clone();
    for r in rdatas {
        signed.extend_from_slice(owner);
        signed.extend_from_slice(&rtype.to_be_bytes());
        signed.extend_from_slice(&crate::wire::CLASS_IN.to_be_bytes());
        signed.extend_from_slice(&ttl.to_be_bytes());
        signed.extend_from_slice(&(r.len() as u16).to_be_bytes());
        signed.extend_from_slice(&data[r.clone()]);
    }
    rdata.extend_from_slice(&key.sign(&signed));
    Sig {
        key: key.id,
        expiration,
        rdata: rdata.into(),
    }
}
