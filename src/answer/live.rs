//! The live answers of a build: a site's (or a view's) MX set, the addresses an A-only MTA is
//! given, a host's addresses, and the note on an answer a blocklist listing shaped.

use std::net::IpAddr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, RecordType};

use super::demoted_plan::warm_plan;
use super::demotions::notes;
use super::draft::Out;
use super::encode::Rdata;
use super::plan::{Mode, MxPlan};
use super::prepared::{Builder, NOERROR, Prepared, SERVFAIL};
use super::records::{Context, Kind, address_type};
use super::snapshot::{Variant, Warm};
use crate::topology::{HostId, View};

impl<'n> Context<'n> {
    /// The TTL of a live answer: shorter while something it depends on is changing.
    fn plan_ttl(&self, plan: &MxPlan) -> u32 {
        let answer = &self.topology.answer;
        if plan.degraded {
            answer.degraded_ttl
        } else {
            answer.ttl
        }
    }

    fn mx_answer(&self, out: &mut Out<'n, '_>, owner: &'n [u8], plan: &MxPlan) -> Prepared {
        let ttl = self.plan_ttl(plan);
        let hosts = &self.topology.hosts;
        let mut b = Builder::new(&mut out.enc, owner, true);
        for ex in &plan.exchanges {
            b.record(
                owner,
                RecordType::MX,
                ttl,
                Rdata::Mx(ex.preference, &hosts[ex.host].wire),
            );
        }
        b.additional();
        for ex in &plan.exchanges {
            self.add_host_addresses(&mut b, ex.host);
        }
        b.finish(NOERROR, true, &mut out.bodies)
    }

    /// The answer at a name whose MX answer follows `plan` in `view`, with its warm-standby
    /// variant: the MX set, or (for an MTA that skips MX) the addresses it should connect to.
    /// `None` when neither variant has a record of that kind.
    pub(super) fn variant(
        &mut self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        view: View,
        plan: &MxPlan,
        kind: Kind,
    ) -> Option<Variant> {
        let warm = match view {
            // The note is the same in either variant: no TXT answer counts as a warm one.
            View::Site(site)
                if self.topology.sites[site].warm_share > 0.0 && kind != Kind::Note =>
            {
                warm_plan(self.topology, self.health, self.demotions, site).and_then(|p| {
                    Some(Warm {
                        answer: self.plan_answer(out, owner, &p, kind)?,
                        site,
                        share: self.topology.sites[site].warm_share,
                    })
                })
            }
            _ => None,
        };
        let normal = match self.plan_answer(out, owner, plan, kind) {
            Some(normal) => normal,
            None if warm.is_some() => self.nodata(out, owner.len()),
            None => return None,
        };
        Some(Variant { normal, warm })
    }

    /// One answer of `kind` for `plan`; `None` for an address family none of its hosts has.
    fn plan_answer(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
        kind: Kind,
    ) -> Option<Prepared> {
        if kind == Kind::Note {
            return self.note_answer(out, owner, plan);
        }
        if plan.exchanges.is_empty() {
            // Nothing is known of any host (DNS-named hosts that never resolved, none
            // remembered): an empty NOERROR would make senders bounce or give up, and an
            // NXDOMAIN would be cached; SERVFAIL makes resolvers retry and senders defer.
            return Some(Builder::new(&mut out.enc, owner, true).finish(
                SERVFAIL,
                false,
                &mut out.bodies,
            ));
        }
        match kind {
            Kind::Mx => Some(self.mx_answer(out, owner, plan)),
            Kind::Addresses { v6 } => self.plan_addresses(out, owner, plan, v6),
            Kind::Note => None,
        }
    }

    /// The TXT record that says which listed sites moved in `plan`, for operators and
    /// `smarthostd explain`; `None` (NODATA) while health alone shapes the answer.
    fn note_answer(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
    ) -> Option<Prepared> {
        if plan.shaped_by.is_empty() {
            return None;
        }
        let txt = RData::TXT(TXT::new(notes(self.topology, self.demotions, plan)));
        let mut b = Builder::new(&mut out.enc, owner, true);
        b.record(
            owner,
            RecordType::TXT,
            self.plan_ttl(plan),
            Rdata::Static(&txt),
        );
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }

    /// The addresses an A-only MTA is given for a name with a live MX answer: those of the hosts
    /// at the answer's lowest preference (the site's healthy relays; when none, the first
    /// fallback tier's), or of every host in the failsafe, with the MX answer's TTL. An MTA that
    /// connects to the name's own addresses then fails over exactly when an MX-first one does.
    /// The lowest preference is taken per address family, as a single-stack MX-first MTA skips
    /// exchanges it has no address for.
    fn plan_addresses(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
        v6: bool,
    ) -> Option<Prepared> {
        let of_family = |host: HostId| {
            self.health
                .host(host)
                .served_addresses()
                .filter(move |a| a.is_ipv6() == v6)
        };
        let lowest = plan
            .exchanges
            .iter()
            .filter(|e| of_family(e.host).next().is_some())
            .map(|e| e.preference)
            .min()?;
        let mut addresses = plan
            .exchanges
            .iter()
            .filter(|e| plan.mode == Mode::Failsafe || e.preference == lowest)
            .flat_map(|e| of_family(e.host))
            .peekable();
        addresses.peek()?;
        let ttl = self.plan_ttl(plan);
        let mut b = Builder::new(&mut out.enc, owner, true);
        if self.topology.shared_addresses {
            let mut unique: Vec<IpAddr> = addresses.collect();
            dedup_in_order(&mut unique);
            for addr in unique {
                b.record(owner, address_type(addr), ttl, Rdata::Address(addr));
            }
        } else {
            for addr in addresses {
                b.record(owner, address_type(addr), ttl, Rdata::Address(addr));
            }
        }
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }

    pub(super) fn address_answer(
        &self,
        out: &mut Out<'n, '_>,
        host: HostId,
        v6: bool,
    ) -> Option<Prepared> {
        let mut served = self
            .health
            .host(host)
            .served_addresses()
            .filter(|a| a.is_ipv6() == v6)
            .peekable();
        served.peek()?;
        let owner = &self.topology.hosts[host].wire;
        let ttl = self.host_ttl[host];
        let mut b = Builder::new(&mut out.enc, owner, true);
        for addr in served {
            b.record(owner, address_type(addr), ttl, Rdata::Address(addr));
        }
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }
}

/// Two hosts may share an address: it is listed once (RFC 2181 section 5), first place kept.
fn dedup_in_order(addresses: &mut Vec<IpAddr>) {
    if addresses.len() <= 32 {
        let mut i = 1;
        while i < addresses.len() {
            if addresses[..i].contains(&addresses[i]) {
                addresses.remove(i);
            } else {
                i += 1;
            }
        }
    } else {
        let mut seen = rustc_hash::FxHashSet::default();
        addresses.retain(|a| seen.insert(*a));
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn two_hosts_sharing_an_address_give_it_once() {
        let snap = crate::test_support::snapshot(
            "[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n\
             [sites.a]\nhosts = [ { name = \"m1\", addresses = [\"192.0.2.1\"] },\n\
             { name = \"m2\", addresses = [\"192.0.2.1\", \"192.0.2.2\"] } ]\n",
            "$ORIGIN smarthost.internal.\n$TTL 30\n@ IN SOA ns1 h ( 1 3600 600 86400 30 )\n\
             @ IN NS ns1\nns1 IN A 127.0.0.1\n",
        );
        assert!(snap.topology.shared_addresses);
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("a.smarthost.internal").unwrap(),
            RecordType::A,
        ));
        let mut out = Vec::new();
        let src = "127.0.0.1:53".parse().unwrap();
        let cookies = crate::dns::cookie::Cookies::new(&[[7; 16]]).unwrap();
        crate::dns::answer_with(
            &snap,
            1232,
            &cookies,
            &m.to_vec().unwrap(),
            src,
            true,
            &mut out,
        )
        .unwrap();
        let addresses: Vec<String> = Message::from_vec(&out)
            .unwrap()
            .answers
            .iter()
            .map(|r| r.data.ip_addr().unwrap().to_string())
            .collect();
        assert_eq!(addresses, ["192.0.2.1", "192.0.2.2"]);
    }
}
