//! The `smarthostd` binary: parse the command line, run, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = smarthostd::cli::Cli::parse();
    smarthostd::cli::run(cli)
}
