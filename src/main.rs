//! The `portalctl` binary: parse, run, report. Errors are printed once, here.

use clap::Parser;
use portalctl::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other Unix filters: a closed pipe (`portalctl tenant list | head`) ends the process quietly.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match portalctl::commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("{} {err:#}", console::style("error:").for_stderr().red().bold());
            portalctl::exit_codes::Exit::for_error(&err).into()
        }
    }
}
