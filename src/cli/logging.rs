//! Logging: tracing with a `RUST_LOG`-style filter, as text or JSON.

use tracing_subscriber::EnvFilter;

use super::LogFormat;

/// hickory-server logs every request at info; its lines are off unless asked for.
/// `RUST_LOG=smarthostd::query=debug` logs each query instead.
pub(super) const DEFAULT_FILTER: &str =
    "info,hickory_server=warn,hickory_proto=warn,hickory_resolver=warn,hickory_net=warn";

pub(super) fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colour only for a person at a terminal, never into journald or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
