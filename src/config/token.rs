//! The admin token: `server.admin_token`, else `server.admin_token_file`, else the environment
//! (`SMARTHOSTD_ADMIN_TOKEN`). The file is read at start and on every reload, and refused when
//! every user may read it. The token itself never reaches a log line or an error message.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::locate::span_of;
use super::validate::root;
use super::{Config, ConfigError};

/// The environment variable that may hold the admin token.
pub const TOKEN_ENV: &str = "SMARTHOSTD_ADMIN_TOKEN";

/// The longest token file read: a token is a line, not a document.
const MAX_FILE_LEN: u64 = 4096;

/// A bearer token. Its `Debug` says nothing of it, so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token as given on the command line or in the config.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, to send or to compare.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Why a token file cannot be used. The messages name the file, never its content.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenFileError {
    /// Missing, unreadable (permissions), or a folder.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Not a regular file.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Every user may read (or write) it: the token would protect nothing.
    #[error(
        "{} is open to every user (mode {mode:04o}): `chmod o-rwx {}`, so that only its owner and group (root and the service's group) can read it",
        path.display(),
        path.display()
    )]
    OpenToAll {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Empty, several lines, or characters a header cannot carry.
    #[error(
        "{} must hold the token alone on one line: printable ASCII, no spaces, at most {MAX_FILE_LEN} bytes",
        path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the token in `path`: a regular file no other user may read, holding one line.
pub(crate) fn read_file(path: &Path) -> Result<AdminToken, TokenFileError> {
    let unreadable = |source| TokenFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The opened file's own metadata: what was checked is what is read.
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(TokenFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(TokenFileError::OpenToAll {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    let malformed = || TokenFileError::Malformed {
        path: path.to_path_buf(),
    };
    file.take(MAX_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|_| malformed())?;
    let token = text.trim();
    let valid = text.len() as u64 <= MAX_FILE_LEN
        && !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(malformed());
    }
    Ok(AdminToken(token.to_string()))
}

/// The token the server requires of state changes over TCP: `server.admin_token`, else the
/// file `server.admin_token_file` (read now), else the environment. An error names the config
/// file, the key's line, and the token file's problem.
pub(crate) fn resolve(config: &Config, text: &str) -> Result<Option<AdminToken>, ConfigError> {
    let server = &config.server;
    if let Some(token) = &server.admin_token {
        return Ok(Some(AdminToken(token.clone())));
    }
    if let Some(path) = server.admin_token_file_path(&config.path) {
        let key = root().key("server").key("admin_token_file");
        return match read_file(&path) {
            Ok(token) => Ok(Some(token)),
            Err(e) => {
                let error = ConfigError::new(&config.path, key.to_string(), e.to_string());
                Err(match span_of(text, &key) {
                    Some(span) => error.at_offset(text, span.start),
                    None => error,
                })
            }
        };
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .map(AdminToken))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_private_file_gives_its_line() {
        let (_dir, path) = file_with("0123abcd\n", 0o640);
        assert_eq!(read_file(&path).unwrap().expose(), "0123abcd");
    }

    #[test]
    fn a_file_every_user_may_read_is_refused_without_showing_the_token() {
        let (_dir, path) = file_with("s3cret-token\n", 0o644);
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("open to every user (mode 0644)"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn empty_multiline_and_spaced_tokens_are_refused() {
        for text in ["", "\n", "two\nlines\n", "with space\n", "tab\there"] {
            let (_dir, path) = file_with(text, 0o600);
            assert!(
                matches!(read_file(&path), Err(TokenFileError::Malformed { .. })),
                "{text:?}"
            );
        }
        let (_dir, path) = file_with(&"a".repeat(5000), 0o600);
        assert!(matches!(
            read_file(&path),
            Err(TokenFileError::Malformed { .. })
        ));
    }

    #[test]
    fn a_folder_or_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            read_file(dir.path()),
            Err(TokenFileError::NotAFile { .. })
        ));
        let missing = dir.path().join("nope");
        let e = read_file(&missing).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("nope"), "{e}");
    }

    #[test]
    fn debug_hides_the_token() {
        assert_eq!(format!("{:?}", AdminToken::new("s3cret")), "AdminToken(..)");
    }
}
