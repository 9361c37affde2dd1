//! The cluster for a terminal: `status --cluster` (every instance side by side) and the
//! instances a drain, an undrain or a reload reached.

use super::terminal::{printable, render_rows};
use crate::admin::{Delivery, Outcome};
use crate::answer::Mode;
use crate::cluster::report::ClusterReport;

/// The instances a change reached, as lines under the reply.
pub(super) struct Deliveries {
    /// A line per instance, each after a newline, indented; empty without a cluster.
    pub(super) text: String,
    /// No instance refused the change or failed it: every one has it, or gets it when back.
    pub(super) all_will_have_it: bool,
}

/// The lines for `instances` (from an [`ActionResult`](crate::admin::ActionResult)).
pub(super) fn deliveries(instances: &[Delivery]) -> Deliveries {
    if instances.is_empty() {
        return Deliveries {
            text: String::new(),
            all_will_have_it: true,
        };
    }
    let rows: Vec<Vec<String>> = (instances.iter())
        .map(|d| vec![format!("  {}", d.instance), d.message.clone()])
        .collect();
    Deliveries {
        text: format!("\n{}", render_rows(&rows).trim_end()),
        all_will_have_it: instances
            .iter()
            .all(|d| matches!(d.result, Outcome::Applied | Outcome::Unreachable)),
    }
}

/// `status --cluster`: the instances, then each relay's verdicts and each site's answers,
/// one column per instance.
pub(super) fn table(report: &ClusterReport) -> String {
    let mut out = String::from("\ninstances:\n");
    let mut rows = vec![vec![
        "  INSTANCE".to_string(),
        "STATE".to_string(),
        "CONFIG".to_string(),
    ]];
    for i in &report.instances {
        let state = match (&i.state[..], &i.problem) {
            ("this", _) => "this instance".to_string(),
            (s, Some(p)) => format!("{s}: {p}"),
            (s, None) => s.to_string(),
        };
        // Its first characters, not bytes: the server's JSON may hold any text.
        let short = |f: &str| f.chars().take(12).collect::<String>();
        let config = match (&i.fingerprint, i.config_differs) {
            (Some(f), true) => format!("DIFFERS ({})", short(f)),
            (Some(f), false) => short(f),
            (None, _) => "-".into(),
        };
        rows.push(vec![format!("  {}", i.name), state, config]);
    }
    out.push_str(&render_rows(&rows));
    let names: Vec<String> = report.instances.iter().map(|i| i.name.clone()).collect();
    let mut header = vec!["SITE".to_string(), "HOST".to_string()];
    header.extend(names.iter().cloned());
    header.push(String::new());
    let mut rows = vec![header];
    for r in &report.relays {
        let mut row = vec![r.site.clone(), r.host.clone()];
        row.extend(r.views.iter().map(|v| match v {
            Some(v) => match &v.reason {
                Some(reason) => format!("{} ({reason})", v.verdict),
                None => v.verdict.clone(),
            },
            None => "-".into(),
        }));
        row.push(if r.disagree {
            "DISAGREE".into()
        } else {
            String::new()
        });
        rows.push(row);
    }
    out.push_str("\nrelays, as each instance sees them:\n");
    out.push_str(&render_rows(&rows));
    out.push_str("\nanswers, as each instance serves them:\n");
    for s in &report.sites {
        let mark = if s.differ { "  (they differ)" } else { "" };
        out.push_str(&format!("  {}{mark}\n", printable(&s.site)));
        for (name, answer) in names.iter().zip(&s.answers) {
            let text = match answer {
                Some(a) => format!("{}: {}", mode(a.mode), a.answer.join(", ")),
                None => "-".into(),
            };
            out.push_str(&format!("    {}  {}\n", printable(name), printable(&text)));
        }
    }
    out
}

fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Normal => "local hosts lead",
        Mode::RemoteOnly => "fallback sites only",
        Mode::Failsafe => "failsafe",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::report::InstanceStatus;

    #[test]
    fn a_fingerprint_of_any_text_is_shortened_without_a_panic() {
        let report = ClusterReport {
            instances: vec![InstanceStatus {
                name: "10.0.1.53:8053".into(),
                state: "up".into(),
                problem: None,
                for_seconds: None,
                view_age_seconds: None,
                fingerprint: Some("ééééééééééééé\u{1b}".into()),
                config_differs: true,
            }],
            relays: Vec::new(),
            sites: Vec::new(),
        };
        let table = table(&report);
        assert!(table.contains("DIFFERS (éééééééééééé)"), "{table}");
    }
}
