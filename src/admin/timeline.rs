//! The status page's look back: each site's and each relay's last 24 hours as a bar (inline
//! SVG, no script), with its share of time up, transitions and longest outage, and the recent
//! events beneath, newest first. Where nothing is known of anyone (before smarthostd first
//! ran), the bars do not waste their width on it: they begin with what is known.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::page::escape;
use crate::events::Event;
use crate::events::history::{self, History, Phase};
use crate::health::status::StatusReport;

/// Events listed beneath the timelines.
pub(crate) const RECENT: usize = 40;

/// Width of a bar in SVG units: one unit is under 90 s of the day.
const BAR_UNITS: f64 = 1000.0;
/// The stretches the bars may show, shortest first: the shortest that holds everything known
/// is taken, so that the axis reads in round numbers.
const VIEWS: [Duration; 10] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(40 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(24 * 3600),
];

const STYLE: &str = r#"
.past { background: #fff; border-radius: 8px; padding: .8em 1em; margin-top: 1em;
        box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.past h2 { font-size: 1.1em; margin: 0 0 .4em; }
.tl { display: grid; grid-template-columns: 12em 1fr 22em; gap: .25em .8em; align-items: center; }
.tl .who { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tl .who.tl-site { font-weight: 600; margin-top: .35em; } .tl .who.tl-relay { padding-left: 1em; }
.tl svg { width: 100%; height: 16px; display: block; background: #e3e7ea; border-radius: 3px; }
.tl .figs { font-size: .85em; color: #3c4650; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tl .axis { display: flex; justify-content: space-between; font-size: .75em; color: #5b6670; }
.legend { font-size: .8em; color: #5b6670; margin: .2em 0 .6em; }
.legend i { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -.1em; margin: 0 .3em 0 .9em; }
.p-up, .p-local { fill: #2e9e5b; background: #2e9e5b; } .p-down { fill: #c8372d; background: #c8372d; }
.p-drained { fill: #7a8590; background: #7a8590; } .p-remote-only { fill: #d98b0b; background: #d98b0b; }
.p-failsafe { fill: #7d1a14; background: #7d1a14; } .p-unknown { fill: #e3e7ea; background: #e3e7ea; }
table.events td { vertical-align: top; } table.events .when { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.events .kind { font-weight: 600; } table.events .reason { color: #3c4650; }
.past h2 .note { font-size: .75em; font-weight: 400; color: #5b6670; }
"#;

/// The timelines of `report` and the last [`RECENT`] of `events`, for the page's foot.
pub(crate) fn section(report: &StatusReport, events: &[Arc<Event>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let html = &mut out;
    let view = View::of(report);
    let begins = match view {
        Some(v) if v.trimmed => format!(
            " <span class=\"note\">· the bars show the last {}: smarthostd's history is younger</span>",
            ago(v.seconds)
        ),
        _ => String::new(),
    };
    let _ = write!(
        html,
        "<style>{STYLE}</style><section class=\"past\"><h2>Last 24 hours{begins}</h2>\
         <div class=\"legend\">{}</div><div class=\"tl\"><div></div><div class=\"axis\">",
        legend()
    );
    let span = view.map_or(history::DAY.as_secs_f64(), |v| v.seconds);
    for quarter in (1..=4).rev() {
        let _ = write!(
            html,
            "<span>−{}</span>",
            ago(span * f64::from(quarter) / 4.0)
        );
    }
    html.push_str("<span>now</span></div><div></div>");
    for site in &report.sites {
        row(html, "tl-site", &site.name, site.last_24h.as_ref(), view);
        for host in &site.hosts {
            row(html, "tl-relay", &host.name, host.last_24h.as_ref(), view);
        }
    }
    html.push_str("</div></section>");
    recent(html, events);
    out
}

fn legend() -> String {
    [
        Phase::Up,
        Phase::Down,
        Phase::Drained,
        Phase::RemoteOnly,
        Phase::Failsafe,
        Phase::Unknown,
    ]
    .iter()
    .map(|p| {
        let label = match p {
            Phase::Up => "up / local hosts lead",
            Phase::Unknown => "not known (not running)",
            p => p.name(),
        };
        format!("<i class=\"p-{}\"></i>{label}", p.name())
    })
    .collect()
}

/// The stretch the bars show: the window, less its start where nothing is known of anyone (in
/// one of the round `VIEWS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct View {
    /// Where the bars begin.
    pub start: SystemTime,
    /// How long the bars span, in seconds, up to the end of the report's window.
    pub seconds: f64,
    /// Begins after the window does.
    pub trimmed: bool,
}

impl View {
    /// The view of every history in `report` (all made over the same window).
    pub(crate) fn of(report: &StatusReport) -> Option<Self> {
        let histories: Vec<&History> = report
            .sites
            .iter()
            .flat_map(|s| {
                std::iter::once(s.last_24h.as_ref())
                    .chain(s.hosts.iter().map(|h| h.last_24h.as_ref()))
            })
            .flatten()
            .collect();
        Self::over(&histories)
    }

    /// The view of `histories`, all made over the same window.
    fn over(histories: &[&History]) -> Option<Self> {
        let first = histories.first()?;
        let end = first.since + Duration::from_secs_f64(first.seconds);
        let known = histories
            .iter()
            .filter_map(|h| h.timeline.iter().find(|s| s.state != Phase::Unknown))
            .map(|s| s.start)
            .min()
            .unwrap_or(first.since);
        let needed = end.duration_since(known).unwrap_or_default();
        let window = Duration::from_secs_f64(first.seconds);
        let span = VIEWS
            .into_iter()
            .find(|&v| v >= needed)
            .unwrap_or(window)
            .min(window);
        Some(Self {
            start: end.checked_sub(span).unwrap_or(first.since),
            seconds: span.as_secs_f64(),
            trimmed: span < window,
        })
    }
}

/// One name, its bar, and its figures.
fn row(html: &mut String, class: &str, name: &str, history: Option<&History>, view: Option<View>) {
    let _ = write!(html, "<div class=\"who {class}\">{}</div>", escape(name));
    let Some(h) = history else {
        html.push_str("<div></div><div class=\"figs\">no history</div>");
        return;
    };
    bar(
        html,
        h,
        view.unwrap_or(View {
            start: h.since,
            seconds: h.seconds,
            trimmed: false,
        }),
    );
    let share = h
        .up_share
        .map_or("no data".to_string(), |s| format!("{:.2} % up", s * 100.0));
    let mut figures = format!(
        "{share} · {} transition{}",
        h.transitions,
        if h.transitions == 1 { "" } else { "s" }
    );
    if h.outages > 0 {
        let _ = write!(
            figures,
            " · longest outage {}",
            span(h.longest_outage_seconds)
        );
    }
    let _ = write!(html, "<div class=\"figs\">{figures}</div>");
}

/// The timeline over `view` as an SVG bar, a rectangle per stretch with its times as a
/// tooltip.
pub(crate) fn bar(html: &mut String, h: &History, view: View) {
    let _ = write!(
        html,
        "<svg viewBox=\"0 0 {BAR_UNITS} 10\" preserveAspectRatio=\"none\" role=\"img\">"
    );
    let total = view.seconds.max(1.0);
    let offset = |t: SystemTime| {
        t.duration_since(view.start)
            .unwrap_or_default()
            .as_secs_f64()
    };
    for s in &h.timeline {
        let (from, to) = (offset(s.start), offset(s.start) + s.seconds);
        if s.state == Phase::Unknown || to <= 0.0 {
            continue;
        }
        let x = from / total * BAR_UNITS;
        let width = (to - from).max(0.0) / total * BAR_UNITS;
        let _ = write!(
            html,
            "<rect class=\"p-{state}\" x=\"{x:.2}\" y=\"0\" width=\"{width:.2}\" height=\"10\">\
             <title>{state} from {start} for {long}</title></rect>",
            state = s.state.name(),
            start = humantime::format_rfc3339_seconds(s.start),
            long = span(s.seconds),
        );
    }
    html.push_str("</svg>");
}

/// The newest events first.
fn recent(html: &mut String, events: &[Arc<Event>]) {
    html.push_str(
        "<section class=\"past\"><h2>Recent events</h2><table class=\"events\">\
         <tr><th>time (UTC)</th><th>event</th><th>where</th><th>change</th><th>why</th></tr>",
    );
    if events.is_empty() {
        html.push_str("<tr><td colspan=\"5\">nothing recorded yet</td></tr>");
    }
    for e in events.iter().rev().take(RECENT) {
        let place = [e.site.as_deref(), e.host.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let place = match &e.address {
            Some(a) => format!("{place} {a}"),
            None => place,
        };
        let change = match (&e.from, &e.to) {
            (Some(from), Some(to)) => format!(
                "<span class=\"p\">{}</span> → <b>{}</b>",
                escape(from),
                escape(to)
            ),
            _ => String::new(),
        };
        let mut reason = e.reason.as_deref().map(escape).unwrap_or_default();
        if let Some(until) = e.until {
            let _ = write!(
                reason,
                " (until {})",
                humantime::format_rfc3339_seconds(until)
            );
        }
        let _ = write!(
            html,
            "<tr><td class=\"when\">{when}</td><td class=\"kind\">{kind}</td><td>{place}</td>\
             <td>{change}</td><td class=\"reason\">{reason}</td></tr>",
            when = humantime::format_rfc3339_seconds(e.time)
                .to_string()
                .replace('T', " "),
            kind = e.kind.name(),
            place = escape(&place),
        );
    }
    html.push_str("</table></section>");
}

/// How long ago, on the axis: in hours, minutes or seconds.
fn ago(seconds: f64) -> String {
    let rounded = |unit: f64, name: &str| {
        let n = seconds / unit;
        if (n - n.round()).abs() < 0.05 {
            format!("{} {name}", n.round())
        } else {
            format!("{n:.1} {name}")
        }
    };
    if seconds >= 3600.0 {
        rounded(3600.0, "h")
    } else if seconds >= 60.0 {
        rounded(60.0, "min")
    } else {
        rounded(1.0, "s")
    }
}

/// A length of time for people, to the second.
fn span(seconds: f64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.round() as u64)).to_string()
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
