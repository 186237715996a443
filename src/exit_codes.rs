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

impl Exit {
    /// The exit code of a command that failed with `err`: [`Exit::Unavailable`] when anything in
    /// its chain of causes says a required service could not be reached (the database, the
    /// cluster, or the PostgreSQL server programs of the local mode), otherwise [`Exit::Failure`].
    /// One mapping for every command, derived from the error types.
    pub fn for_error(err: &anyhow::Error) -> Exit {
        let unavailable = err.chain().any(|e| {
            e.downcast_ref::<crate::cluster::Error>().is_some_and(crate::cluster::Error::is_unavailable)
                || e.downcast_ref::<crate::db::Error>().is_some_and(crate::db::Error::is_unavailable)
                || matches!(e.downcast_ref::<crate::local::Error>(), Some(crate::local::Error::NoBinaries))
                || e.downcast_ref::<crate::audit::Error>().is_some_and(crate::audit::Error::is_unavailable)
        });
        if unavailable {
            Exit::Unavailable
        } else {
            Exit::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_unreachable_anywhere_in_the_chain_is_exit_3() {
        let cluster = crate::cluster::Error::NoConfig { message: "no KUBECONFIG".into() };
        let err = anyhow::Error::new(cluster).context("rollout pause --group krz");
        assert_eq!(Exit::for_error(&err), Exit::Unavailable);
        let db = crate::db::Error::Connect { host: "127.0.0.1".into(), port: 1, reason: "refused".into() };
        assert_eq!(Exit::for_error(&anyhow::Error::new(db).context("tenant detmold")), Exit::Unavailable);
        assert_eq!(Exit::for_error(&anyhow::anyhow!("2 error(s) in the tenant files")), Exit::Failure);
    }
}
