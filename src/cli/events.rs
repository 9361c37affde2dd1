//! `smarthostd events`: what happened, from the running server's `GET /events`, as a table or
//! as JSON.

use std::time::SystemTime;

use clap::Args;

use super::ClientArgs;
use super::client::Admin;
use super::error::CliError;
use crate::events::Event;
use crate::events::filter::parse_since;

#[derive(Debug, Clone, Args)]
pub(super) struct EventsArgs {
    /// From this time on: an RFC 3339 time (2025-06-01T03:00:00Z) or a duration back from now
    /// (90m, 12h, 2d). Default: every event the server keeps.
    #[arg(long, value_name = "TIME|DURATION")]
    since: Option<String>,
    /// Only events of this site.
    #[arg(long)]
    site: Option<String>,
    /// Only events of hosts of this name.
    #[arg(long)]
    host: Option<String>,
    /// Print the events as a JSON array, oldest first, instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub(super) fn run(args: &EventsArgs) -> Result<(), CliError> {
    if let Some(since) = &args.since {
        parse_since(since, SystemTime::now())
            .map_err(|e| CliError::Usage(format!("--since: {e}")))?;
    }
    let admin = Admin::new(&args.client)?;
    let query: Vec<(&str, &str)> = [
        ("since", &args.since),
        ("site", &args.site),
        ("host", &args.host),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.as_deref()?)))
    .collect();
    let body = admin.get_query("/events", &query)?;
    let events: Vec<Event> = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    if args.json {
        // Re-encoded: JSON escapes every control character a relay may have sent.
        println!(
            "{}",
            serde_json::to_string_pretty(&events).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", table(&events));
    }
    Ok(())
}

/// The events as a table for a terminal, oldest first.
pub(super) fn table(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events\n".into();
    }
    let mut rows = vec![[
        "TIME".to_string(),
        "EVENT".to_string(),
        "SITE/HOST".to_string(),
        "ADDRESS".to_string(),
        "CHANGE".to_string(),
        "REASON".to_string(),
    ]];
    for e in events {
        let place = [e.site.as_deref(), e.host.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let change = match (&e.from, &e.to) {
            (Some(from), Some(to)) => format!("{from} → {to}"),
            _ => String::new(),
        };
        let mut reason = e.reason.clone().unwrap_or_default();
        if let Some(until) = e.until {
            reason.push_str(&format!(
                " (until {})",
                humantime::format_rfc3339_seconds(until)
            ));
        }
        rows.push([
            humantime::format_rfc3339_seconds(e.time).to_string(),
            e.kind.name().to_string(),
            place,
            e.address.clone().unwrap_or_default(),
            change,
            reason,
        ]);
    }
    super::terminal::render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_table_escapes_relay_text_and_shows_each_change() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let a = "192.0.2.1".parse().unwrap();
        let events = [
            Event::state("oxford", "mail1", a, "up", "down", "421 busy \x1b[2J").at(t),
            Event::drain("oxford", "mail2", false, Some(t), "by operator").at(t),
            Event::reload("reloaded: 3 addresses kept").at(t),
        ];
        let text = table(&events);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TIME"), "{text}");
        assert!(
            lines[1].contains("state")
                && lines[1].contains("oxford/mail1")
                && lines[1].contains("up → down"),
            "{text}"
        );
        assert!(lines[2].contains("(until 2025-06-15T15:06:40Z)"), "{text}");
        assert!(lines[3].contains("reload") && lines[3].contains("3 addresses kept"));
        assert_eq!(table(&[]), "no events\n");
    }
}
