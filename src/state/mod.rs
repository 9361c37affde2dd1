//! What smarthostd keeps across restarts, in `server.state_dir`: operator drains and the last
//! known addresses of hosts named by DNS.
//!
//! - [`StateDir`]: the folder, locked so that two instances never share (and overwrite) it.
//! - [`drains`]: drained hosts, with an optional end time, each a register stamped by [`hlc`]
//!   (a hybrid logical clock) so that instances can merge them; a damaged file loses only its
//!   damaged lines.
//! - `kept`: how the health task writes the drains (and hands them to the peers) and the last
//!   known addresses while it runs.
//! - [`resolved`]: the addresses each DNS-named host last resolved to, served when its name
//!   does not resolve at start.
//! - [`serial`]: the SOA serial's reservation, so that it never goes back across a restart.
//! - [`writer`]: writes replace a file atomically, in order, off the async workers.
//! - [`file`]: how every file in the folder is opened and replaced: never through a symbolic
//!   link, only when it is a regular file, through exclusively created temporary files.

pub mod drains;
pub(crate) mod file;
pub mod hlc;
pub(crate) mod kept;
pub(crate) mod resolved;
pub(crate) mod serial;
pub(crate) mod writer;

use std::fs::File;
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
    /// Creates the folder if needed, takes its lock, and removes the temporary files a crash
    /// may have left. The folder may be a symbolic link (see [`file`]); its files may not.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let io_error = |what: &str, error| StateError::Io {
            dir: path.to_path_buf(),
            what: what.to_string(),
            error,
        };
        std::fs::create_dir_all(path).map_err(|e| io_error("cannot create it", e))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = file::open_lock(&lock_path)
            .map_err(|e| io_error(&format!("cannot open its lock file {LOCK_FILE}"), e))?;
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
        remove_temporaries(path);
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

/// Removes what [`file::replace`] leaves when a crash interrupts it. Only its own names are
/// touched, and a link among them is removed, not followed.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if [drains::FILE_NAME, resolved::FILE_NAME]
            .iter()
            .any(|of| file::is_temporary_of(&name, of))
        {
            let _ = std::fs::remove_file(entry.path());
        }
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

    #[test]
    fn a_linked_lock_file_is_refused_and_a_linked_folder_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&real, &linked).unwrap();
        let state = StateDir::open(&linked).expect("the operator's link to a folder is followed");
        assert!(real.join(LOCK_FILE).is_file());
        drop(state);

        std::fs::remove_file(real.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), real.join(LOCK_FILE)).unwrap();
        let e = StateDir::open(&real).unwrap_err().to_string();
        assert!(
            e.contains("lock file smarthostd.lock") && e.contains("symbolic link"),
            "{e}"
        );
        assert!(
            !dir.path().join("elsewhere").exists(),
            "nothing created through the link"
        );
    }

    #[test]
    fn temporaries_left_by_a_crash_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let left = ".drained-hosts.4242.0123456789abcdef.tmp";
        std::fs::write(dir.path().join(left), "half").unwrap();
        std::fs::write(dir.path().join("drained-hosts.tmp"), "not ours").unwrap();
        let _state = StateDir::open(dir.path()).unwrap();
        assert!(!dir.path().join(left).exists());
        assert!(dir.path().join("drained-hosts.tmp").exists());
    }
}
