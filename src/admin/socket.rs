//! The control socket (`server.control_socket`): the admin API on a UNIX socket, as knotc and
//! unbound-control have theirs, where file permissions decide who may act. It is made with
//! mode 0660 (owner and group: the service and its operators) without ever following a link:
//! bound inside a fresh private folder beside it, given its mode there, then renamed into
//! place. A stale socket (nothing listens) is replaced; anything else at the path — a file, a
//! folder, a link, a socket in use — stops the start. The folder's own permissions are left as
//! they are (systemd's `RuntimeDirectory=` sets them).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket's permission bits: read and write (connect) for owner and group.
pub const SOCKET_MODE: u32 = 0o660;

/// The control socket, bound and in place.
#[derive(Debug)]
pub struct ControlSocket {
    pub(super) listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the file made: at the end only that file is removed.
    identity: (u64, u64),
}

impl ControlSocket {
    /// Binds the socket at `path` with [`SOCKET_MODE`].
    pub fn bind(path: &Path) -> io::Result<Self> {
        let refuse = |what: String| {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("control socket {}: {what}", path.display()),
            )
        };
        let name = path
            .file_name()
            .ok_or_else(|| refuse("names no file".into()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(refuse(
                        "another process is listening on it (another smarthostd?)".into(),
                    ));
                }
                // Stale: left by a server that did not stop cleanly; the rename replaces it.
            }
            Ok(meta) => {
                let what = if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else if meta.is_dir() {
                    "a folder"
                } else {
                    "a file"
                };
                return Err(refuse(format!(
                    "{what} is in its place; it is not replaced (remove it, or choose another path)"
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(refuse(e.to_string())),
        }
        let private = private_folder(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "control socket {}: cannot create a file in {}: {e} (the systemd unit's RuntimeDirectory= makes /run/smarthostd)",
                    path.display(),
                    dir.display()
                ),
            )
        })?;
        let staged = private.join(name);
        let result = (|| {
            let listener = UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(SOCKET_MODE))?;
            std::fs::rename(&staged, path)?;
            let meta = std::fs::symlink_metadata(path)?;
            listener.set_nonblocking(true)?;
            Ok(Self {
                listener,
                path: path.to_path_buf(),
                identity: (meta.dev(), meta.ino()),
            })
        })();
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_dir(&private);
        result.map_err(|e: io::Error| {
            io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()))
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file, if it is still the one made here.
    pub(super) fn remove(path: &Path, identity: (u64, u64)) {
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_socket()
            && (meta.dev(), meta.ino()) == identity
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The listener, and what [`remove`](Self::remove) needs at the end.
    pub(super) fn into_parts(self) -> (UnixListener, PathBuf, (u64, u64)) {
        (self.listener, self.path, self.identity)
    }
}

/// A new folder in `dir` that only this user may enter.
fn private_folder(dir: &Path) -> io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    loop {
        let candidate = dir.join(format!(".smarthostd-{:08x}", fastrand::u32(..)));
        match builder.create(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
