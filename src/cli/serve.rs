//! `smarthostd serve`: load, bind, start, then wait for signals: SIGHUP reloads, SIGTERM and
//! SIGINT stop gracefully. Tells systemd READY after the first probe round.

use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

use super::error::CliError;
use super::{ServeArgs, logging};
use crate::{dns, loaded, server};

pub(super) fn run(args: &ServeArgs) -> Result<(), CliError> {
    logging::init(args.log_format);
    let loaded =
        loaded::load(&args.config).map_err(|e| CliError::Usage(format!("config error: {e}")))?;
    let config = &loaded.config;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let udp_sockets = match config.server.udp_sockets {
        0 => workers,
        n => n,
    };
    let sockets = dns::bind::bind(&config.server.listen, udp_sockets).map_err(|e| e.to_string())?;
    let admin_listeners = server::AdminListeners::bind(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let served: Result<(), String> = runtime.block_on(async move {
        // Signals are taken from the start: a SIGHUP or SIGTERM during the first probe round
        // (which can last a while with hanging relays) must not kill the process outright.
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let running = server::start(loaded, sockets, admin_listeners)
            .await
            .map_err(|e| e.to_string())?;
        let stopped = running.shutdown_token();
        let mut ready = false;
        let failed = loop {
            tokio::select! {
                r = running.ready(), if !ready => {
                    ready = r;
                    if ready {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                    }
                }
                _ = hup.recv() => {
                    if ready {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                    }
                    match running.control.reload().await {
                        Ok(_) => {}
                        Err(e) => error!(error = %e, "SIGHUP reload failed"),
                    }
                    if ready {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                    }
                }
                _ = term.recv() => break false,
                _ = int.recv() => break false,
                () = stopped.cancelled() => break true,
            }
        };
        info!("shutting down");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        running.stop().await;
        if failed {
            Err("stopped after an error (see the log)".into())
        } else {
            Ok(())
        }
    });
    Ok(served?)
}
