//! Why a command failed, told apart by its exit code so that a script can decide what to do:
//! fix the command or the config (2), try again once the server is back (3), or stop, because
//! the server heard the request and said no (4). Anything else exits 1, as a config that
//! `check-config` finds invalid, a change NOT SAVED, or a cluster instance that refused or
//! failed a change always have.

use std::process::ExitCode;

use super::endpoint::Unreachable;

/// Exit code of a command that failed in a way none of the codes below names.
pub(super) const FAILED: u8 = 1;
/// Exit code of bad usage or a config that does not load: nothing was sent (clap's own usage
/// errors exit 2 as well).
pub(super) const USAGE: u8 = 2;
/// Exit code of a server that could not be reached: no admin endpoint answered.
pub(super) const UNREACHABLE: u8 = 3;
/// Exit code of a server that answered and refused the request.
pub(super) const REFUSED: u8 = 4;

/// A command's failure, by the kind its exit code tells.
#[derive(Debug, thiserror::Error)]
pub(super) enum CliError {
    /// The command line or the config it names is wrong.
    #[error("{0}")]
    Usage(String),
    /// No admin endpoint of the server answered.
    #[error("cannot reach the admin API: {0}")]
    Unreachable(Unreachable),
    /// The server answered and refused (a token it does not take, a host it does not know, a
    /// reload whose config does not load there).
    #[error("{0}")]
    Refused(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process's exit code for this failure.
    pub(super) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Usage(_) => USAGE,
            Self::Unreachable(_) => UNREACHABLE,
            Self::Refused(_) => REFUSED,
            Self::Failed(_) => FAILED,
        })
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}
