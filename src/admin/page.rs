//! The status page: sites side by side, hosts coloured by state with the reason, and each
//! site's MX answer as senders see it; beneath, what the caller adds (the last 24 hours,
//! [`timeline`](super::timeline)). Plain HTML that refreshes itself.

use std::fmt::Write;

use crate::answer::Mode;
use crate::health::status::{HostStatus, SiteStatus, StatusReport};

/// Seconds between refreshes.
const REFRESH_SECS: u32 = 3;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2329; background: #f4f6f8; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
.meta { color: #5b6670; margin-bottom: 1em; }
.sites { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.site { background: #fff; border-radius: 8px; padding: .8em 1em; min-width: 19em; flex: 1 1 19em;
        box-shadow: 0 1px 3px rgba(0,0,0,.12); border-top: 5px solid #2e9e5b; }
.site.remote_only { border-top-color: #d98b0b; }
.site.failsafe { border-top-color: #c8372d; }
.site h2 { font-size: 1.1em; margin: 0; }
.mode { font-size: .85em; color: #5b6670; margin-bottom: .5em; }
.host { border-radius: 5px; padding: .35em .6em; margin: .3em 0; color: #fff; }
.host.up { background: #2e9e5b; } .host.down { background: #c8372d; }
.host.drained { background: #7a8590; } .host.unknown { background: #3f7fbf; }
.host .name { font-weight: 600; } .host .state { float: right; text-transform: uppercase; font-size: .8em; }
.addr { font-size: .85em; opacity: .95; } .reason { font-size: .85em; font-style: italic; }
table { border-collapse: collapse; width: 100%; margin-top: .6em; font-size: .9em; }
th, td { text-align: left; padding: .15em .4em; border-bottom: 1px solid #e3e7ea; }
th { color: #5b6670; font-weight: 500; }
.pref { font-variant-numeric: tabular-nums; width: 3em; }
.listing { border-left: 4px solid #c8372d; background: #fbeceb; padding: .3em .6em; margin: .4em 0; font-size: .85em; }
"#;

/// Renders the page for `report`, with the HTML of `below` after the sites.
pub(crate) fn render(report: &StatusReport, below: &str) -> String {
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>smarthostd — {origin}</title><style>{STYLE}</style></head><body>\
         <h1>smarthostd · {origin}</h1>\
         <div class=\"meta\">generation {generation} · SOA serial {serial} · {ready}</div>\
         <div class=\"sites\">",
        origin = escape(&report.origin),
        generation = report.generation,
        serial = report.serial,
        ready = if report.ready {
            "ready"
        } else {
            "first probe round in progress"
        },
    );
    for site in &report.sites {
        site_card(&mut html, site);
    }
    html.push_str("</div>");
    html.push_str(below);
    html.push_str("</body></html>\n");
    html
}

fn site_card(html: &mut String, site: &SiteStatus) {
    let (class, mode) = match site.mode {
        Mode::Normal => ("normal", "local hosts lead"),
        Mode::RemoteOnly => ("remote_only", "no local host healthy: fallback sites only"),
        Mode::Failsafe => (
            "failsafe",
            "nothing healthy: failsafe, every configured host",
        ),
    };
    let ttl = if site.degraded {
        " · degraded TTL"
    } else {
        ""
    };
    let _ = write!(
        html,
        "<section class=\"site {class}\"><h2>{name}</h2><div class=\"mode\">{domain} · {mode}{ttl}</div>",
        name = escape(&site.name),
        domain = escape(&site.domain),
    );
    for host in &site.hosts {
        host_row(html, host);
    }
    listing_lines(html, site);
    html.push_str("<table><tr><th class=\"pref\">MX</th><th>exchange</th><th>addresses</th></tr>");
    for mx in &site.answer {
        let addrs: Vec<String> = mx.addresses.iter().map(ToString::to_string).collect();
        let _ = write!(
            html,
            "<tr><td class=\"pref\">{}</td><td>{}</td><td>{}</td></tr>",
            mx.preference,
            escape(&mx.exchange),
            escape(&addrs.join(", "))
        );
    }
    html.push_str("</table></section>");
}

fn host_row(html: &mut String, host: &HostStatus) {
    let _ = write!(
        html,
        "<div class=\"host {state}\"><span class=\"name\">{name}</span><span class=\"state\">{state}</span>",
        state = escape(&host.state),
        name = escape(&host.name),
    );
    for a in &host.addresses {
        let latency = a
            .latency_ms
            .map_or(String::new(), |ms| format!(" · {ms:.1} ms"));
        let pending = if a.pending { " · changing" } else { "" };
        let _ = write!(
            html,
            "<div class=\"addr\">{addr} {state}{latency}{pending}</div>",
            addr = a.address,
            state = escape(&a.state),
        );
        if let Some(reason) = &a.reason
            && a.state != "up"
        {
            let _ = write!(html, "<div class=\"reason\">{}</div>", escape(reason));
        }
    }
    html.push_str("</div>");
}

/// Blocklist listings of the site's egress, its demotion, and listings that shaped its answer.
fn listing_lines(html: &mut String, site: &SiteStatus) {
    for line in site.reputation.iter().flat_map(|r| r.lines()) {
        let _ = write!(html, "<div class=\"listing\">{}</div>", escape(&line));
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_covers_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
