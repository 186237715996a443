//! The `portalctl` binary: parse, run, report. Errors are printed once, here.

use clap::Parser;
use portalctl::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match portalctl::commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("{} {err:#}", console::style("error:").red().bold());
            portalctl::exit_codes::Exit::Failure.into()
        }
    }
}
