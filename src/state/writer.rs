//! Writing a state file: the whole text to a temporary file, then renamed over the old one
//! ([`file::replace`](super::file::replace)), so a crash leaves the old file or the new one,
//! never half of either. Texts are numbered as they
//! are made; a text older than one already written is skipped (it can only arrive late, and
//! the newer text already holds its change).

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

/// One state file and the number of the last text written to it.
#[derive(Debug)]
pub(crate) struct FileWriter {
    path: PathBuf,
    written: Mutex<u64>,
}

impl FileWriter {
    /// A writer of the file at `path`; nothing is written until [`write`](Self::write).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: Mutex::new(0),
        }
    }

    /// The file written, for messages.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes text number `generation` (blocking: call it off the async workers).
    pub(crate) fn write(&self, generation: u64, text: &str) -> io::Result<()> {
        let mut written = self.written.lock().expect("writer lock");
        if generation <= *written {
            return Ok(());
        }
        super::file::replace(&self.path, text.as_bytes())?;
        *written = generation;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_older_text_does_not_replace_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let w = FileWriter::new(dir.path().join("f"));
        w.write(2, "two\n").unwrap();
        w.write(1, "one\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("f")).unwrap(),
            "two\n"
        );
        w.write(3, "three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("f")).unwrap(),
            "three\n"
        );
    }
}
