//! What smarthostd keeps across restarts, in `server.state_dir`: operator drains and the last
//! known addresses of hosts named by DNS.
//!
//! - [`StateDir`]: the folder, locked so that two instances never share (and overwrite) it.
//! - [`drains`]: drained hosts, with an optional end time; a damaged file loses only its
//!   damaged lines.
//! - [`resolved`]: the addresses each DNS-named host last resolved to, served when its name
//!   does not resolve at start.
//! - [`serial`]: the SOA serial's reservation, so that it never goes back across a restart.
//! - [`writer`]: writes replace a file atomically, in order, off the async workers.

pub mod drains;
pub mod resolved;
pub mod serial;
pub mod writer;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside the state directory.
pub const LOCK_FILE: &str = "smarthostd.lock";

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another running instance holds the lock.
    #[error(
        "state_dir {dir} is in use by another smarthostd{pid}: give each instance its own server.state_dir, or its drains overwrite the other's"
    )]
    InUse {
        /// The state directory.
        dir: PathBuf,
        /// ` (pid N)`: the holder, as its lock file says; empty when it does not say.
        pid: String,
    },
    /// The folder or a file in it cannot be read or written.
    #[error("state_dir {dir}: {what}: {error}")]
    Io {
        /// The state directory.
        dir: PathBuf,
        /// What failed, in words ("cannot lock it").
        what: String,
        /// The operating system's error.
        error: io::Error,
    },
}

/// The locked state directory; the lock lasts as long as this value.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates the folder if needed and takes its lock.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let io_error = |what: &str, error| StateError::Io {
            dir: path.to_path_buf(),
            what: what.to_string(),
            error,
        };
        std::fs::create_dir_all(path).map_err(|e| io_error("cannot create it", e))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error("cannot open its lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let pid = holder
                    .trim()
                    .parse::<u32>()
                    .map_or(String::new(), |pid| format!(" (pid {pid})"));
                return Err(StateError::InUse {
                    dir: path.to_path_buf(),
                    pid,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("cannot lock it", e)),
        }
        // Who holds it, for the next instance's message.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = writeln!(lock, "{}", std::process::id());
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The folder: drains, last known addresses and events are kept in it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_of_the_folder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::open(dir.path()).unwrap();
        let second = StateDir::open(dir.path()).unwrap_err();
        let text = second.to_string();
        assert!(text.contains("in use by another smarthostd"), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(first);
        StateDir::open(dir.path()).expect("free again once the first is gone");
    }
}
