//! The SOA serial across restarts: `soa-serial` holds the highest serial this instance may have
//! served, reserved ahead in blocks so that a generation costs no write.
//!
//! Before a serial above the reservation is served, `serial + BLOCK - 1` is written; after a
//! restart numbering goes on above the reservation (and above the zone file's serial, the floor,
//! and the clock, as before there was a file), so the serial never goes back: resolvers,
//! validators and secondaries (zone transfers) may rely on it. Comparisons use serial number
//! arithmetic (RFC 1982), so numbering wraps past 2^32 as RFC 1982 allows.

use std::io;
use std::path::Path;

use super::writer::FileWriter;

/// The file name inside `server.state_dir`.
pub(crate) const FILE_NAME: &str = "soa-serial";
/// Serials reserved by one write: at one generation a second, a write every quarter hour; a
/// restart skips at most this many.
pub(crate) const BLOCK: u32 = 1000;

/// Whether serial `a` is after `b` (RFC 1982 section 3.2).
pub(crate) fn serial_after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The later of two serials; `a` when they are exactly 2^31 apart (then neither is).
fn later(a: u32, b: u32) -> u32 {
    if serial_after(b, a) { b } else { a }
}

/// Hands out serials, each after the last, and keeps the reservation file ahead of them.
#[derive(Debug)]
pub(crate) struct Serials {
    current: u32,
    reserved: u32,
    file: Option<FileWriter>,
    written: u64,
}

impl Serials {
    /// Starts after the latest of the stored reservation, the zone file's serial and `clock`
    /// (seconds since the epoch); `file` is where reservations go (`None`: kept nowhere).
    pub(crate) fn start(
        file: Option<FileWriter>,
        stored: Option<u32>,
        floor: u32,
        clock: u32,
    ) -> Self {
        let current = [stored, Some(floor)]
            .into_iter()
            .flatten()
            .fold(clock, later);
        Self {
            current,
            reserved: current,
            file,
            written: 0,
        }
    }

    /// Raises the numbering to the zone file's serial when a reload brings a later one.
    pub(crate) fn raise_floor(&mut self, floor: u32) {
        self.current = later(self.current, floor);
    }

    /// The next serial. When it passes the reservation, a new one is written first; a failed
    /// write is returned beside the serial (serving goes on: answers must follow health).
    pub(crate) fn advance(&mut self) -> (u32, Option<io::Error>) {
        let next = self.current.wrapping_add(1);
        let mut error = None;
        if serial_after(next, self.reserved) {
            let reserve = next.wrapping_add(BLOCK - 1);
            if let Some(file) = &self.file {
                self.written += 1;
                let text = format!(
                    "# the highest SOA serial smarthostd may have served; it goes on above it\n{reserve}\n"
                );
                error = file.write(self.written, &text).err();
            }
            if error.is_none() {
                self.reserved = reserve;
            }
        }
        self.current = next;
        (next, error)
    }
}

/// Reads a reservation; a missing file is `Ok(None)`, a damaged one an error to log.
pub(crate) fn read(path: &Path) -> Result<Option<u32>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match line.map(str::parse::<u32>) {
        Some(Ok(serial)) => Ok(Some(serial)),
        _ => Err("no serial in it".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps_as_rfc_1982_says() {
        assert!(serial_after(2, 1));
        assert!(serial_after(0, u32::MAX));
        assert!(serial_after(5, u32::MAX - 5));
        assert!(!serial_after(1, 2));
        assert!(!serial_after(7, 7));
        assert_eq!(later(u32::MAX, 3), 3);
        assert_eq!(later(10, 3), 10);
    }

    #[test]
    fn serials_rise_with_one_write_per_block_and_resume_above_the_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut s = Serials::start(Some(FileWriter::new(path.clone())), None, 7, 100);
        assert_eq!(s.current, 100, "the clock beats the zone file");
        assert_eq!(s.advance().0, 101);
        assert_eq!(read(&path), Ok(Some(101 + BLOCK - 1)));
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        for _ in 0..BLOCK - 1 {
            s.advance();
        }
        assert_eq!(s.current, 100 + BLOCK);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert_eq!(
            read(&path),
            Ok(Some(100 + BLOCK)),
            "no write inside the block"
        );
        assert_eq!(s.advance().0, 101 + BLOCK);
        assert_eq!(read(&path), Ok(Some(100 + 2 * BLOCK)));
        // A restart (the clock set back) goes on above everything that may have been served.
        let stored = read(&path).unwrap();
        let mut again = Serials::start(Some(FileWriter::new(path.clone())), stored, 7, 50);
        assert!(serial_after(again.advance().0, 101 + BLOCK));
        // Wrapping past 2^32 keeps rising in serial arithmetic.
        let mut w = Serials::start(None, Some(u32::MAX - 1), 3_000_000_000, 3_000_000_000);
        let (a, _) = w.advance();
        let (b, _) = w.advance();
        assert_eq!((a, b), (u32::MAX, 0));
        assert!(serial_after(b, a));
        // A reload with a later zone file serial raises the numbering.
        w.raise_floor(1_000_000);
        assert_eq!(w.advance().0, 1_000_001);
    }

    #[test]
    fn a_damaged_or_unwritable_reservation_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(read(&path).is_err());
        let missing = dir.path().join("no-such-dir").join(FILE_NAME);
        assert_eq!(read(&missing), Ok(None));
        let mut s = Serials::start(Some(FileWriter::new(missing)), None, 1, 10);
        let (serial, error) = s.advance();
        assert_eq!(serial, 11);
        assert!(error.is_some());
        assert!(s.advance().1.is_some(), "tried again on the next serial");
    }
}
