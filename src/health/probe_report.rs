//! A probe report taken in: the address's verdict through the hysteresis (with its event, log
//! line and metrics on a change), when the address is probed next, the start-up round it
//! counts for, and the siblings a failure wakes.

use std::time::{Duration, SystemTime};

use tracing::info;

use super::task::HealthTask;
use crate::answer::State;
use crate::events::Event;
use crate::metrics::TransitionLabels;
use crate::probe::ProbeReport;

impl HealthTask {
    /// Takes one probe report: the address's verdict (an event, a log line and a metric on a
    /// change), when to probe it next, and the round and the siblings it concerns.
    pub(super) fn report(&mut self, r: ProbeReport) {
        let Some(host_id) = self.probes.owner(r.id) else {
            return;
        };
        let mut thresholds = self.thresholds();
        if matches!(&r.result, Err(failed) if failed.dane.is_some()) {
            thresholds = thresholds.refusing();
        }
        let topology = self.loaded.topology.clone();
        let Some(index) = self.hosts[host_id]
            .addresses
            .iter()
            .position(|a| a.probe.id == r.id)
        else {
            return;
        };
        self.key_checked(host_id, index, &r.result);
        let address = &mut self.hosts[host_id].addresses[index];
        let first = address.last_probe.is_none();
        let was_pending = address.hysteresis.pending();
        let was_steady_up = !was_pending && address.hysteresis.state() == State::Up;
        address.last_probe = Some((SystemTime::now(), r.elapsed));
        let ok = r.result.is_ok();
        match &r.result {
            Ok(_) => {
                if address.hysteresis.state() != State::Down {
                    address.reason = None;
                }
            }
            Err(failed) => address.reason = Some(failed.reason.clone()),
        }
        let h = &topology.hosts[host_id];
        let site = &topology.sites[h.site].name;
        if let Some(t) = address.hysteresis.observe(ok, thresholds, r.at) {
            let reason = match &r.result {
                Ok(passed) => {
                    let mut reason = format!(
                        "SMTP dialogue completed in {}",
                        humantime::format_duration(round_ms(r.elapsed))
                    );
                    if let Some(note) = &passed.note {
                        reason.push_str("; ");
                        reason.push_str(note);
                    }
                    reason
                }
                Err(failed) => failed.reason.clone(),
            };
            let needed = if ok { thresholds.rise } else { thresholds.fall };
            info!(
                site = %site, host = %h.name, address = %r.addr,
                from = t.from.name(), to = t.to.name(),
                %reason, results = t.count, needed,
                "address state changed"
            );
            self.events.record(Event::state(
                site,
                &h.name,
                r.addr,
                t.from.name(),
                t.to.name(),
                &reason,
            ));
            self.metrics
                .transitions
                .get_or_create(&TransitionLabels {
                    site: site.clone(),
                    host: h.name.clone(),
                    address: r.addr.to_string(),
                    to: t.to.name(),
                })
                .inc();
            self.publisher.changed();
        }
        if address.hysteresis.pending() != was_pending {
            // The answer's TTL follows a pending change.
            self.publisher.changed();
        }
        let up = address.hysteresis.state() == State::Up;
        address.metrics.probed(ok, r.elapsed, up);
        let next = if address.hysteresis.pending() {
            // Fast confirm: a first failure, or a first success of a down address, is checked
            // again at once.
            Duration::ZERO
        } else {
            self.jittered_interval()
        };
        let _ = r.next.send(next);
        if !ok && was_steady_up {
            self.check_siblings(h.site, r.id);
        }
        if first && let Some(round) = &mut self.round {
            round.probes = round.probes.saturating_sub(1);
            self.check_round();
        }
    }

    /// A steady address of `site` failed: probe the site's other steady addresses now rather
    /// than at their turn. A whole site going dark (power, uplink) is then seen within one
    /// probe of any of its relays, while each address still needs `fall` failures of its own.
    fn check_siblings(&self, site: usize, failed: u64) {
        let topology = &self.loaded.topology;
        for &host in &topology.sites[site].hosts {
            for a in &self.hosts[host].addresses {
                let steady = a.hysteresis.state() != State::Down && !a.hysteresis.pending();
                if a.probe.id != failed && steady {
                    a.probe.wake.notify_one();
                }
            }
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
