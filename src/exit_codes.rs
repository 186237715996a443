//! Process exit codes, documented in `portalctl --help`.

use std::process::ExitCode;

/// What the process reports to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done; nothing is wrong.
    Success = 0,
    /// The command ran and found problems (validation errors, failed tenants, differences).
    Failure = 1,
    /// The command line was wrong (clap's own code).
    Usage = 2,
    /// A required service (cluster, database, DNS) could not be reached.
    Unavailable = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
