//! `smarthostd generate`: man pages and shell completions, made from the command line's own
//! definition so that they never drift from it. Hidden from help, pages and completions; the
//! Debian package build runs it (`deploy/debian/build-deb.sh`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory, Subcommand};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};

use super::error::CliError;
use super::{Cli, error};

#[derive(Debug, Subcommand)]
pub(super) enum Generate {
    /// Write smarthostd.1 and a page per subcommand (smarthostd-serve.1, ...) into DIR.
    Man {
        /// Where the pages go; created if missing.
        dir: PathBuf,
    },
    /// Print the completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
}

/// The exit codes the main page lists ([`super::error`]).
const EXIT_STATUS: &[(u8, &str)] = &[
    (0, "The command did what was asked."),
    (
        error::FAILED,
        "It failed otherwise: check-config found the config invalid, a change was NOT SAVED, \
         a cluster instance refused or failed a change, a relay showed no key (tlsa).",
    ),
    (
        error::USAGE,
        "Bad usage, or a config that does not load (serve, the admin clients, dnssec): \
         nothing was sent.",
    ),
    (
        error::UNREACHABLE,
        "The server could not be reached: no admin endpoint (control socket, server.admin) answered.",
    ),
    (
        error::REFUSED,
        "The server answered and refused: a token it does not take, a host it does not know, \
         a reload whose config does not load there.",
    ),
];

/// Files the main page lists: where a packaged install keeps its config and state.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/smarthostd/smarthost.toml",
        "The configuration: listen addresses, zone, probes, sites and their relays.",
    ),
    (
        "/etc/smarthostd/smarthost.internal.zone",
        "The static part of the zone (SOA, NS, the name server's address), named by zone.file.",
    ),
    (
        "/etc/smarthostd/env",
        "SMARTHOSTD_ADMIN_TOKEN=..., read by the systemd unit (mode 0600).",
    ),
    (
        "/var/lib/smarthostd/drained-hosts",
        "Drained relays, kept across restarts (server.state_dir).",
    ),
    (
        "/var/lib/smarthostd/soa-serial",
        "The SOA serial reserved ahead, so that it never goes back across a restart.",
    ),
    (
        "/etc/smarthostd/keys/K<zone>.+<alg>+<tag>.key, .private",
        "DNSSEC key pairs in BIND's format (dnssec.key_dir); the .private files mode 0600.",
    ),
    (
        "/var/lib/smarthostd/events.jsonl",
        "What happened (state changes, drains, reloads, answer modes), one JSON object a line; rotated to events.jsonl.1 at 1 MiB.",
    ),
];

pub(super) fn run(what: Generate) -> Result<(), CliError> {
    match what {
        Generate::Man { dir } => {
            man_pages(&dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))
        }
        Generate::Completions { shell } => {
            let mut cmd = visible(Cli::command());
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut cmd, "smarthostd", &mut out);
            out.flush().map_err(|e| CliError::Failed(e.to_string()))
        }
    }
}

/// The command line without its hidden subcommands: clap_complete would offer them too.
fn visible(cmd: Command) -> Command {
    let mut out = Command::new("smarthostd")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out
}

/// The main page, with EXIT STATUS, FILES and SEE ALSO sections, and one page per visible
/// subcommand.
fn man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives subcommands their display names (smarthostd-serve) for their pages' titles.
    cmd.build();
    let mut see_also = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = Man::new(sub.clone());
        see_also.push(page.get_filename());
        page.generate_to(dir)?;
        // `dnssec keygen` and `dnssec ds` get pages of their own too.
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let page = Man::new(nested.clone());
            see_also.push(page.get_filename());
            page.generate_to(dir)?;
        }
    }

    let main = Man::new(cmd);
    let mut page = Vec::new();
    main.render(&mut page)?;
    let page = String::from_utf8(page).map_err(std::io::Error::other)?;
    let mut extra = Roff::default();
    extra.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_STATUS {
        extra
            .control("TP", [])
            .text([roman(code.to_string())])
            .text([roman(*what)]);
    }
    extra.control("SH", ["FILES"]);
    for (path, what) in FILES {
        extra
            .control("TP", [])
            .text([roman(*path)])
            .text([roman(*what)]);
    }
    extra.control("SH", ["SEE ALSO"]);
    let pages: Vec<String> = see_also
        .iter()
        .map(|f| {
            let (name, section) = f.rsplit_once('.').unwrap_or((f, "1"));
            format!("{name}({section})")
        })
        .collect();
    extra.text([roman(format!(
        "{}, systemctl(1), dig(1). The deployment guide: /usr/share/doc/smarthostd/GUIDE.md.",
        pages.join(", ")
    ))]);
    // FILES and SEE ALSO go before VERSION, the last section.
    let at = page.find(".SH VERSION").unwrap_or(page.len());
    let page = format!("{}{}{}", &page[..at], extra.to_roff(), &page[at..]);
    std::fs::write(dir.join(main.get_filename()), page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_visible_subcommand_and_not_this_one() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "smarthostd-check-config.1",
                "smarthostd-dnssec-ds.1",
                "smarthostd-dnssec-keygen.1",
                "smarthostd-dnssec.1",
                "smarthostd-drain.1",
                "smarthostd-drains.1",
                "smarthostd-events.1",
                "smarthostd-explain.1",
                "smarthostd-reload.1",
                "smarthostd-serve.1",
                "smarthostd-status.1",
                "smarthostd-tlsa.1",
                "smarthostd-undrain.1",
                "smarthostd.1",
            ]
        );
        let main = std::fs::read_to_string(dir.path().join("smarthostd.1")).unwrap();
        assert!(main.contains("\n.TH smarthostd 1 "), "{main}");
        for needed in [
            "check\\-config",
            "\\-\\-log\\-format",
            ".SH \"EXIT STATUS\"",
            "could not be reached",
            "refused",
            ".SH FILES",
            "drained\\-hosts",
            "events.jsonl",
        ] {
            assert!(main.contains(needed), "{needed} missing from:\n{main}");
        }
        assert!(!main.contains("generate"), "{main}");
        let drain = std::fs::read_to_string(dir.path().join("smarthostd-drain.1")).unwrap();
        assert!(drain.contains("SITE/HOST"), "{drain}");
        let tlsa = std::fs::read_to_string(dir.path().join("smarthostd-tlsa.1")).unwrap();
        assert!(tlsa.contains("HOST[:PORT]"), "{tlsa}");
    }

    #[test]
    fn completions_know_the_subcommands_and_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut visible(Cli::command()),
                "smarthostd",
                &mut script,
            );
            let script = String::from_utf8(script).unwrap();
            for needed in ["check-config", "undrain", "log-format"] {
                assert!(script.contains(needed), "{shell}: {needed} missing");
            }
            assert!(
                !script.contains("generate"),
                "{shell}: lists the hidden subcommand"
            );
        }
    }
}
