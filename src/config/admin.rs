//! The admin API's keys of `[server]`: the token (inline or in a file, and required off
//! loopback), the control socket, and `admin_hosts`, whose names are compared with HTTP `Host`
//! values in the form [`host_name`] gives.

use super::validate::{Validator, is_hostname_label, root};
use super::{Config, ConfigError};

impl Validator<'_> {
    /// Checks the admin keys of `config`'s `[server]`.
    pub(super) fn admin(&self, config: &Config) -> Result<(), ConfigError> {
        let s = &config.server;
        let at = |k: &str| root().key("server").key(k);
        if let Some(admin) = s.admin {
            // An admin listener other machines can reach needs a token for drain and reload.
            self.check(
                admin.ip().is_loopback() || config.has_admin_token(),
                at("admin"),
                format!(
                    "{admin} is not on loopback: set server.admin_token_file (or admin_token, or {}), so that drain and reload need a token",
                    super::TOKEN_ENV
                ),
            )?;
        }
        self.check(
            s.admin_token.is_none() || s.admin_token_file.is_none(),
            at("admin_token_file"),
            "give server.admin_token or server.admin_token_file, not both",
        )?;
        if let Some(file) = &s.admin_token_file {
            self.check(
                !file.as_os_str().is_empty(),
                at("admin_token_file"),
                "must name a file",
            )?;
        }
        if let Some(socket) = &s.control_socket {
            self.check(
                !socket.as_os_str().is_empty() && socket.file_name().is_some(),
                at("control_socket"),
                "must name a socket file, such as \"/run/smarthostd/control.sock\"",
            )?;
        }
        for (i, name) in s.admin_hosts.iter().enumerate() {
            self.check(
                host_name(name).is_some(),
                at("admin_hosts").index(i),
                format!(
                    "{name:?} is not a host name: give the name alone, such as \"smarthostd.example.org\" (no scheme, port or path; this listener's addresses and localhost need no entry)"
                ),
            )?;
        }
        Ok(())
    }
}

/// `name` in the form HTTP `Host` values are compared in: lower case, without the trailing
/// dot; `None` unless it is a host name of LDH labels (RFC 1123), at most 253 characters. A
/// name whose last label is a number is an address to a browser (`127.1`, `2130706433`,
/// `0x7f.1`: the URL standard's "ends in a number"), so it is no name here.
pub(crate) fn host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let valid =
        !name.is_empty() && name.len() <= 253 && name.split('.').all(is_hostname_label) && !numeric;
    valid.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_are_compared_in_lower_case_without_the_trailing_dot() {
        assert_eq!(
            host_name("SmartHostd.Example.ORG."),
            Some("smarthostd.example.org".into())
        );
        assert_eq!(host_name("localhost"), Some("localhost".into()));
        for bad in [
            "",
            ".",
            "a..b",
            "http://x",
            "x:8053",
            "x/y",
            "127.0.0.1",
            "::1",
            "[::1]",
            "a b",
            "127.1",
            "2130706433",
            "0x7f.1",
            "127.0.0.01",
            "example.0x1F",
            "evil.example@127.0.0.1",
            "-a.example",
            "a_b.example",
        ] {
            assert_eq!(host_name(bad), None, "{bad}");
        }
    }
}
