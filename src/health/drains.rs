//! Drained hosts survive a restart: one `site/host` per line in a small state file.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// The file name inside `server.state_dir`.
pub const FILE_NAME: &str = "drained-hosts";

/// The set of drained `site/host` keys and where it is kept.
#[derive(Debug, Clone)]
pub struct DrainStore {
    path: PathBuf,
    keys: BTreeSet<String>,
}

impl DrainStore {
    /// Reads the store in `dir`; a missing file is an empty set.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(FILE_NAME);
        let keys = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_ascii_lowercase)
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, keys })
    }

    /// A store that is never written (when no state directory is usable).
    pub fn in_memory() -> Self {
        Self {
            path: PathBuf::new(),
            keys: BTreeSet::new(),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(&key.to_ascii_lowercase())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Sets `key` drained or not, and writes the file (atomically, by rename).
    pub fn set(&mut self, key: &str, drained: bool) -> io::Result<()> {
        let key = key.to_ascii_lowercase();
        let changed = if drained {
            self.keys.insert(key)
        } else {
            self.keys.remove(&key)
        };
        if !changed || self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let mut text =
            String::from("# hosts drained with `smarthostd drain`; one site/host per line\n");
        for k in &self.keys {
            text.push_str(k);
            text.push('\n');
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("smarthostd-drains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = DrainStore::open(&dir).unwrap();
        assert!(!store.contains("oxford/mail1"));
        store.set("Oxford/Mail1", true).unwrap();
        store.set("cambridge/mail1", true).unwrap();
        store.set("cambridge/mail1", false).unwrap();
        let again = DrainStore::open(&dir).unwrap();
        assert!(again.contains("oxford/mail1"));
        assert_eq!(again.keys().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
