//! The sites and hosts of a validated [`Config`], indexed for the health and answer code.
//!
//! Sites and hosts are numbered in file order; a [`HostId`] indexes [`Topology::hosts`] and the
//! health view alike. Names are lower-case fully qualified DNS names.
//!
//! [`tlsa`]: the TLSA RRsets of the pinned relays, owner by owner, ready for the answers.

pub(crate) mod tlsa;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::config::{Config, DEFAULT_SMTP_PORT, VIEW_ALL, interface_index};
use crate::wire::{fqdn, wire_name};

/// Index of a site in [`Topology::sites`].
pub type SiteId = usize;
/// Index of a host in [`Topology::hosts`].
pub type HostId = usize;

/// The shape of the zone: who is where, who backs up whom.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The zone apex (lower case, fully qualified).
    pub origin: Name,
    /// Every site, in config order; a [`SiteId`] indexes it.
    pub sites: Vec<Site>,
    /// Every host, site by site in config order; a [`HostId`] indexes it.
    pub hosts: Vec<Host>,
    /// TTLs and preferences of synthesized answers.
    pub answer: AnswerSettings,
    /// Shared names answered per client site, besides the apex (lower case, fully qualified).
    pub view_names: Vec<Name>,
    /// The view of clients in no site's networks.
    pub default_view: View,
    /// Whether the apex and `view_names` are answered per client site.
    pub views_enabled: bool,
    /// Every site's client networks, longest prefix first.
    pub client_networks: Vec<(IpNet, SiteId)>,
    /// Resolvers whose EDNS Client Subnet option is believed.
    pub trusted_resolvers: Vec<IpNet>,
    /// Clients that may query; empty: everyone.
    pub allow_query: Vec<IpNet>,
    /// The TLSA RRsets to publish, owner by owner ([`Topology::tlsa_rrsets`]).
    pub tlsa: Vec<tlsa::TlsaRrset>,
    /// Whether two hosts may share an address (one configured twice, or any host named by
    /// DNS): then an answer listing several hosts' addresses must leave out repeats.
    pub shared_addresses: bool,
}

/// Which answer a shared name gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// As the site's own pseudo-domain answers.
    Site(SiteId),
    /// Every healthy host at one preference.
    All,
}

/// TTLs and preferences of synthesized answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerSettings {
    /// TTL in seconds of synthesized records while every host they depend on is steady
    /// (`zone.ttl`).
    pub ttl: u32,
    /// TTL in seconds while a host an answer depends on is down or changing state
    /// (`zone.degraded_ttl`).
    pub degraded_ttl: u32,
    /// MX preference of a site's own hosts in its answer (`zone.local_preference`).
    pub local_preference: u16,
    /// The preference of the first fallback tier, and what each further tier adds: the numbers
    /// a reordered answer (a demoted site) is given.
    pub fallback_preference: u16,
    /// What each further fallback tier adds to the preference (`zone.fallback_step`).
    pub fallback_step: u16,
}

/// One site: its pseudo-domain, its hosts, its ordered fallbacks.
#[derive(Debug, Clone)]
pub struct Site {
    /// The `[sites.<name>]` key, lower case: the name in drains, metrics, status and events.
    pub name: String,
    /// `<site>.<origin>`.
    pub domain: Name,
    /// `domain` in lower-case wire form.
    pub wire: Box<[u8]>,
    /// Its own hosts, in config order.
    pub hosts: Vec<HostId>,
    /// Fallback sites with the MX preference their hosts get in this site's answer.
    pub fallback: Vec<(SiteId, u16)>,
    /// Client networks that see this site's view of shared names.
    pub clients: Vec<IpNet>,
    /// Share of answers that list the first fallback site's hosts at the local preference.
    pub warm_share: f64,
}

/// One smart host.
#[derive(Debug, Clone)]
pub struct Host {
    /// The site it belongs to.
    pub site: SiteId,
    /// Its name in the site's `hosts`, lower case: the first label of `fqdn`.
    pub name: String,
    /// `<host>.<site>.<origin>`: the MX exchange and A/AAAA owner.
    pub fqdn: Name,
    /// `fqdn` in lower-case wire form.
    pub wire: Box<[u8]>,
    /// Configured addresses (empty for a host named by `target`).
    pub addresses: Vec<IpAddr>,
    /// The interface index of each configured link-local IPv6 address.
    pub link_local: Vec<(IpAddr, u32)>,
    /// The name the certificate must carry when TLS is verified.
    pub certificate_name: Option<Name>,
    /// A DNS name whose addresses are this host's.
    pub target: Option<Name>,
    /// SMTP port probed.
    pub port: u16,
    /// Probe timeout for this host.
    pub timeout: Duration,
    /// Whether the probe requires STARTTLS (always, for a host with TLSA records).
    pub starttls: bool,
    /// The TLSA records that pin its key or its CA (`tlsa`, and the record of `tls_key`):
    /// every probe checks the chain the relay presents against them.
    pub tlsa: Vec<crate::dane::Tlsa>,
}

impl Host {
    /// `site/host`, the key drains and the admin API use.
    pub fn key(&self, topology: &Topology) -> String {
        format!("{}/{}", topology.sites[self.site].name, self.name)
    }

    /// The interface index to reach `addr` through (0 unless it is link-local).
    pub fn scope_id(&self, addr: IpAddr) -> u32 {
        self.link_local
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or(0, |(_, scope)| *scope)
    }

    /// The name a verified certificate must carry, and the probe sends as SNI: `tls_name`,
    /// else for a pinned host its name in the zone (the TLSA base domain, which a DANE sender
    /// sends, RFC 7672 section 8.1), else the `fqdn`; `None` checks it against the address.
    pub fn tls_name(&self) -> Option<rustls_pki_types::ServerName<'static>> {
        let pinned = (!self.tlsa.is_empty()).then_some(&self.fqdn);
        let name = self
            .certificate_name
            .as_ref()
            .or(pinned)
            .or(self.target.as_ref())?;
        rustls_pki_types::ServerName::try_from(name.to_ascii().trim_end_matches('.').to_string())
            .ok()
    }
}

impl Topology {
    /// Builds the topology of a validated config.
    pub fn from_config(config: &Config) -> Result<Self, hickory_proto::ProtoError> {
        let origin = fqdn(&config.zone.origin)?;
        let zone = &config.zone;
        let mut sites = Vec::with_capacity(config.sites.len());
        let mut hosts = Vec::new();
        for (site_id, (site_name, site)) in config.sites.iter().enumerate() {
            let site_label = site_name.to_ascii_lowercase();
            let domain = Name::from_ascii(&site_label)?.append_domain(&origin)?;
            let mut ids = Vec::with_capacity(site.hosts.len());
            for host in &site.hosts {
                let label = host.name.to_ascii_lowercase();
                let target = host.fqdn.as_deref().map(fqdn).transpose()?;
                ids.push(hosts.len());
                let host_fqdn = Name::from_ascii(&label)?.append_domain(&domain)?;
                hosts.push(Host {
                    site: site_id,
                    wire: wire_name(&host_fqdn).into(),
                    fqdn: host_fqdn,
                    name: label,
                    addresses: host.addresses.iter().map(|a| a.ip).collect(),
                    link_local: host
                        .addresses
                        .iter()
                        .filter_map(|a| Some((a.ip, interface_index(a.interface.as_deref()?))))
                        .collect(),
                    certificate_name: host.tls_name.as_deref().map(fqdn).transpose()?,
                    target,
                    port: host.port.unwrap_or(DEFAULT_SMTP_PORT),
                    timeout: host.timeout.unwrap_or(config.probe.timeout),
                    starttls: host.starttls.unwrap_or(config.probe.starttls) || host.has_tlsa(),
                    tlsa: host.tlsa.clone(),
                });
            }
            let site_index = |n: &str| config.sites.get_index_of(n).expect("validated site");
            let fallback = match &site.fallback {
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let pref = zone.fallback_preference + zone.fallback_step * i as u16;
                        (site_index(n), pref)
                    })
                    .collect(),
                None => (0..config.sites.len())
                    .filter(|&other| other != site_id)
                    .map(|other| (other, zone.fallback_preference))
                    .collect(),
            };
            sites.push(Site {
                name: site_label,
                wire: wire_name(&domain).into(),
                domain,
                hosts: ids,
                fallback,
                clients: site.clients.clone(),
                warm_share: site.warm_share,
            });
        }
        let view_names: Vec<Name> = config
            .views
            .names
            .iter()
            .map(|n| {
                if n.ends_with('.') {
                    fqdn(n)
                } else {
                    Name::from_ascii(n)?.to_lowercase().append_domain(&origin)
                }
            })
            .collect::<Result<_, _>>()?;
        let default_view = match config.views.default.as_deref() {
            None | Some(VIEW_ALL) => View::All,
            Some(site) => View::Site(config.sites.get_index_of(site).expect("validated site")),
        };
        let shared_addresses = {
            let mut seen = std::collections::HashSet::new();
            hosts
                .iter()
                .any(|h: &Host| h.target.is_some() || h.addresses.iter().any(|a| !seen.insert(*a)))
        };
        let mut topology = Self {
            shared_addresses,
            origin,
            sites,
            hosts,
            answer: AnswerSettings {
                ttl: zone.ttl_secs(),
                degraded_ttl: zone.degraded_ttl_secs(),
                local_preference: zone.local_preference,
                fallback_preference: zone.fallback_preference,
                fallback_step: zone.fallback_step,
            },
            views_enabled: !view_names.is_empty()
                || config.views.default.is_some()
                || config.sites.values().any(|s| !s.clients.is_empty()),
            view_names,
            default_view,
            client_networks: {
                let mut nets: Vec<(IpNet, SiteId)> = config
                    .sites
                    .values()
                    .enumerate()
                    .flat_map(|(id, s)| s.clients.iter().map(move |n| (n.trunc(), id)))
                    .collect();
                nets.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
                nets
            },
            trusted_resolvers: config.server.trusted_resolvers.clone(),
            allow_query: config.server.allow_query.iter().map(IpNet::trunc).collect(),
            tlsa: Vec::new(),
        };
        topology.tlsa = topology.tlsa_rrsets()?;
        Ok(topology)
    }

    /// Sets each host's TLSA records (in host order: the `tlsa` of the config with the records
    /// of the key files, as [`config::tlsa::resolve`](crate::config::tlsa::resolve) reads
    /// them), and the RRsets made of them; fails when an owner name would be too long.
    pub fn with_tlsa(
        mut self,
        records: Vec<Vec<crate::dane::Tlsa>>,
    ) -> Result<Self, hickory_proto::ProtoError> {
        for (host, records) in self.hosts.iter_mut().zip(records) {
            host.tlsa = records;
        }
        self.tlsa = self.tlsa_rrsets()?;
        Ok(self)
    }

    /// The view of a client address, and the prefix length of the network that chose it.
    pub fn view_of(&self, addr: IpAddr) -> (View, Option<u8>) {
        let addr = canonical_ip(addr);
        self.client_networks
            .iter()
            .find(|(net, _)| net.contains(&addr))
            .map_or((self.default_view, None), |(net, site)| {
                (View::Site(*site), Some(net.prefix_len()))
            })
    }

    /// The view of an EDNS Client Subnet (`addr`/`source_prefix`), and the scope prefix to
    /// return with it: long enough that every address under it gets the same view, and at
    /// least as long as any site network inside the asked-for subnet — so a resolver asking
    /// for a /8 that holds site networks of /16 never caches one site's view for another
    /// (RFC 7871 section 7.2.1). That is the prefix of the network that chose the view, one bit
    /// past where the address parts from any other site network, and the prefix of every site
    /// network inside the subnet.
    pub fn view_of_subnet(&self, addr: IpAddr, source_prefix: u8) -> (View, u8) {
        let addr = canonical_ip(addr);
        let (view, matched) = self.view_of(addr);
        let mut scope = matched.unwrap_or(0);
        let source = IpNet::new(addr, source_prefix).map(|n| n.trunc()).ok();
        for (net, _) in &self.client_networks {
            if net.contains(&addr) {
                continue;
            }
            if let Some(common) = common_prefix(addr, net.network()) {
                scope = scope.max((common + 1).min(net.max_prefix_len()));
            }
            if source.is_some_and(|s| s.contains(&net.network())) {
                scope = scope.max(net.prefix_len());
            }
        }
        (view, scope)
    }

    /// Whether `addr` may query (`server.allow_query`).
    pub fn allows_query(&self, addr: IpAddr) -> bool {
        self.allow_query.is_empty() || {
            let addr = canonical_ip(addr);
            self.allow_query.iter().any(|n| n.contains(&addr))
        }
    }

    /// Whether `addr` is a resolver whose ECS option is believed.
    pub fn trusts_resolver(&self, addr: IpAddr) -> bool {
        let addr = canonical_ip(addr);
        self.trusted_resolvers.iter().any(|n| n.contains(&addr))
    }

    /// The host `site/host`, if configured.
    pub fn find_host(&self, site: &str, host: &str) -> Option<HostId> {
        let site_id = self
            .sites
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(site))?;
        self.sites[site_id]
            .hosts
            .iter()
            .copied()
            .find(|&h| self.hosts[h].name.eq_ignore_ascii_case(host))
    }

    /// Every view a shared name can be answered in: one per site, then "all" when it is the
    /// default (with a site as the default, no client ever gets "all").
    pub fn views(&self) -> impl Iterator<Item = View> + '_ {
        let all = (self.default_view == View::All).then_some(View::All);
        (0..self.sites.len()).map(View::Site).chain(all)
    }

    /// The index of `view` in [`Topology::views`].
    pub fn view_index(&self, view: View) -> usize {
        match view {
            View::Site(s) => s,
            View::All => self.sites.len(),
        }
    }
}

/// How many leading bits two addresses of one family share; `None` across families.
fn common_prefix(a: IpAddr, b: IpAddr) -> Option<u8> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some((u32::from(a) ^ u32::from(b)).leading_zeros() as u8),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            Some((u128::from(a) ^ u128::from(b)).leading_zeros() as u8)
        }
        _ => None,
    }
}

/// An IPv4-mapped IPv6 address (from a dual-stack socket) as the IPv4 address it is.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}
