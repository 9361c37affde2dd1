//! The files of the state directory, opened safely: never through a symbolic link
//! (`O_NOFOLLOW`), only when they are regular files, never waiting on a FIFO (`O_NONBLOCK`), and
//! a file written in place (the event history, the lock file) only when it has no other name (a
//! hard link would make the write land in another file); new contents go to an exclusively
//! created temporary file (`O_CREAT | O_EXCL`, a name no one can guess), synced, then renamed
//! over the old file.
//!
//! The folder is often writable by a service user, and smarthostd may run as root: a link
//! planted as `drained-hosts` must not make it read `/etc/shadow` into its log, nor a link at a
//! temporary name make it overwrite another file. Each error says what is in the file's place;
//! callers name the file.
//!
//! The state directory itself is followed if it is a link: it is the operator's choice, made in
//! the config (`/var/lib/smarthostd` pointing at another disk is an ordinary layout), and only
//! root or the service user can change what it points at. What is checked is what is inside.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;

/// Permissions of the files smarthostd creates: the service user writes, its group reads.
pub(crate) const FILE_MODE: u32 = 0o640;
/// Tries at a free temporary name before giving up (a clash takes a guessed 64-bit name).
const TEMPORARY_TRIES: usize = 8;

/// Flags on every open: no link followed, no wait for a FIFO's other end.
const SAFE_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// Opens `path` for reading; `None` when there is no file.
pub(crate) fn open_read(path: &Path) -> io::Result<Option<File>> {
    match checked(
        OpenOptions::new().read(true).custom_flags(SAFE_FLAGS),
        path,
        false,
    ) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The bytes of `path`; `None` when there is no file.
pub(crate) fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let Some(mut file) = open_read(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Some(bytes))
}

/// Opens `path` for appending, creating it when missing.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    checked(
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .custom_flags(SAFE_FLAGS),
        path,
        true,
    )
}

/// Opens `path` for reading and writing, creating it when missing (the lock file).
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    checked(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(SAFE_FLAGS),
        path,
        true,
    )
}

/// Replaces `path` with `bytes`: written to a new temporary file beside it, synced, renamed
/// over it. A crash leaves the old file or the new one; a link at `path` is replaced, never
/// followed; a link or file at any other name is never touched.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (temporary, mut file) = create_temporary(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    // The rename reaches the disk with the folder's entry.
    if let Ok(folder) = File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// A new file `.<name>.<pid>.<random>.tmp` beside `path`, created exclusively: an existing
/// name (a link planted there included) is never opened.
fn create_temporary(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let mut last = None;
    for _ in 0..TEMPORARY_TRIES {
        let temporary = path.with_file_name(format!(
            ".{name}.{}.{:016x}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(SAFE_FLAGS)
            .open(&temporary);
        match opened {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Whether `name` is one of [`create_temporary`]'s names for the file `of`: left behind by a
/// crash, safe to remove.
pub(crate) fn is_temporary_of(name: &str, of: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(of))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|middle| {
            middle.split_once('.').is_some_and(|(pid, random)| {
                pid.bytes().all(|b| b.is_ascii_digit())
                    && random.len() == 16
                    && random.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
}

/// Opens with `options`, then refuses anything but a regular file, and when the file is
/// written `in_place`, one with other names.
fn checked(options: &OpenOptions, path: &Path, in_place: bool) -> io::Result<File> {
    let file = options.open(path).map_err(explain)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_file() && in_place && meta.nlink() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it has {} names (hard links), and a write would reach the others",
                meta.nlink()
            ),
        ));
    }
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something else"
    };
    Err(not_regular(what))
}

/// The error of a refused open, in words.
fn explain(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        // O_NOFOLLOW on a link.
        Some(libc::ELOOP) => io::Error::new(
            e.kind(),
            "it is a symbolic link, and state files are never followed",
        ),
        // Opened for writing: a folder, or a FIFO no one reads.
        Some(libc::EISDIR) => not_regular("a folder"),
        Some(libc::ENXIO) => not_regular("a FIFO or socket"),
        _ => e,
    }
}

fn not_regular(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_what_it_points_at_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root:$6$hash\n").unwrap();
        let link = dir.path().join("drained-hosts");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = read(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!e.contains("root"), "{e}");
        assert!(open_append(&link).is_err());
        assert!(open_lock(&link).is_err());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root:$6$hash\n");
    }

    #[test]
    fn a_file_written_in_place_is_refused_when_it_has_other_names() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("passwd");
        std::fs::write(&other, "root:x:0:0\n").unwrap();
        let events = dir.path().join("events.jsonl");
        std::fs::hard_link(&other, &events).unwrap();
        let e = open_append(&events).unwrap_err().to_string();
        assert!(e.contains("hard links"), "{e}");
        assert!(open_lock(&events).is_err());
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "root:x:0:0\n");
        // Read and replaced, never written in place: a second name does no harm.
        assert!(read(&events).unwrap().is_some());
        replace(&events, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "root:x:0:0\n");
    }

    #[test]
    fn a_folder_or_a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("events.jsonl");
        std::fs::create_dir(&folder).unwrap();
        for e in [
            read(&folder).unwrap_err(),
            open_append(&folder).unwrap_err(),
        ] {
            assert!(
                e.to_string().contains("a folder, not a regular file"),
                "{e}"
            );
        }
        let fifo = dir.path().join("drained-hosts");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No reader or writer at the other end: these would block without O_NONBLOCK.
        for e in [
            read(&fifo).unwrap_err(),
            open_append(&fifo).unwrap_err(),
            open_lock(&fifo).unwrap_err(),
        ] {
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert_eq!(read(&dir.path().join("missing")).unwrap(), None);
    }

    #[test]
    fn a_replacement_goes_through_a_new_file_and_replaces_a_link_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, "keep me\n").unwrap();
        let path = dir.path().join("drained-hosts");
        std::os::unix::fs::symlink(&other, &path).unwrap();
        // The name older versions wrote through.
        std::os::unix::fs::symlink(&other, dir.path().join("drained-hosts.tmp")).unwrap();
        replace(&path, b"oxford/mail1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep me\n");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read(&path).unwrap(), b"oxford/mail1\n");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o607, 0o600, "{mode:o}: others get nothing");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| is_temporary_of(n, "drained-hosts")),
            "no temporary file left: {names:?}"
        );
    }

    #[test]
    fn temporary_names_are_recognised_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (temporary, _file) = create_temporary(&dir.path().join("drained-hosts")).unwrap();
        let name = temporary
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(is_temporary_of(&name, "drained-hosts"), "{name}");
        for other in [
            "drained-hosts",
            "drained-hosts.tmp",
            ".drained-hosts.tmp",
            ".resolved-hosts.42.0123456789abcdef.tmp",
            ".drained-hosts.x.0123456789abcdef.tmp",
        ] {
            assert!(!is_temporary_of(other, "drained-hosts"), "{other}");
        }
    }
}
