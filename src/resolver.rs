//! The stub resolver the probes (DNS-named smart hosts), the blocklist lookups and `smarthostd
//! explain` all ask: hickory-resolver over the configured name servers, or the system's.
//! It stands below its users so that neither owns what both need.

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, ResolverBuilder, TokioResolver};

/// Why no resolver could be made.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ResolverError {
    /// No name servers were given and the system's (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(#[source] NetError),
    /// The resolver refused its settings.
    #[error("{0}")]
    Build(#[source] NetError),
}

/// A resolver using `nameservers` (UDP and TCP), or the system configuration when empty.
pub(crate) fn resolver_for(nameservers: &[SocketAddr]) -> Result<TokioResolver, ResolverError> {
    resolver_builder(nameservers)?
        .build()
        .map_err(ResolverError::Build)
}

/// The builder of [`resolver_for`], for callers that set options of their own.
pub(crate) fn resolver_builder(
    nameservers: &[SocketAddr],
) -> Result<ResolverBuilder<TokioRuntimeProvider>, ResolverError> {
    let provider = TokioRuntimeProvider::default();
    let builder = if nameservers.is_empty() {
        Resolver::builder(provider).map_err(ResolverError::SystemConfig)?
    } else {
        let servers = nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        Resolver::builder_with_config(ResolverConfig::from_parts(None, vec![], servers), provider)
    };
    Ok(builder)
}
