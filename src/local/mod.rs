//! The local all-in-one mode's private PostgreSQL: found on the machine, initialised once under the state directory
//! (`.portalctl/`), started and stopped with `pg_ctl`, reused next time. Nothing here needs a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and pg_ctl on the PATH, in `pg_config --bindir` and \
         in /usr/lib/postgresql/*/bin); install them (Debian/Ubuntu: apt-get install postgresql) or pass \
         --database-url to use an existing server"
    )]
    NoBinaries,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error(
        "port {port} on 127.0.0.1 is in use (another PostgreSQL?), so the private PostgreSQL cannot start there; \
         choose another port: `portalctl up --db-port {next}` (and the same --db-port for `portalctl down`)",
        next = port.wrapping_add(1)
    )]
    PortInUse { port: u16 },
    #[error("the private PostgreSQL did not start on 127.0.0.1:{port}: {detail}; its log is {}", log.display())]
    Start { port: u16, log: PathBuf, detail: String },
    #[error("cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where PostgreSQL's server programs live.
pub fn find_bindir() -> Result<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has(d)) {
            return Ok(d);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&d) {
            return Ok(d);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    // Newest major version first ("15" < "16"; compare numerically).
    candidates.sort_by_key(|d| {
        d.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0)
    });
    candidates.pop().ok_or(Error::NoBinaries)
}

/// The superuser URL of a private PostgreSQL on 127.0.0.1:`port` (trust authentication on loopback only).
fn superuser_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// A PostgreSQL cluster owned by portalctl's local mode.
#[derive(Debug, Clone)]
pub struct LocalPostgres {
    pub bindir: PathBuf,
    /// `<state>/postgres`: data directory `data/`, socket directory `run/`, log `server.log`.
    pub root: PathBuf,
    pub port: u16,
}

fn is_root() -> bool {
    // PostgreSQL refuses to run as root; root hands the server to the `postgres` user.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

impl LocalPostgres {
    pub fn new(state_dir: &Path, port: u16) -> Result<LocalPostgres> {
        Ok(LocalPostgres { bindir: find_bindir()?, root: state_dir.join("postgres"), port })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The superuser URL of this cluster (trust authentication on loopback only).
    pub fn url(&self) -> String {
        superuser_url(self.port)
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, what: &str, mut cmd: Command) -> Result<()> {
        let out = cmd.output().map_err(|e| Error::Command { what: what.into(), detail: e.to_string() })?;
        if out.status.success() {
            Ok(())
        } else {
            let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(Error::Command { what: what.into(), detail })
        }
    }

    /// Whether the data directory has been initialised.
    pub fn initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// Whether the server is running (per `pg_ctl status`).
    pub fn running(&self) -> bool {
        self.initialised()
            && self
                .command("pg_ctl")
                .arg("status")
                .arg("-D")
                .arg(self.data_dir())
                .output()
                .is_ok_and(|o| o.status.success())
    }

    /// Initialise (first time only) and start (unless running). Returns whether it had to start it.
    pub fn start(&self) -> Result<bool> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(self.socket_dir()).map_err(io(&self.socket_dir()))?;
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.root)
                .status()
                .map_err(|e| Error::Command { what: "chown".into(), detail: e.to_string() })?;
            if !status.success() {
                return Err(Error::Command { what: "chown".into(), detail: format!("{status}") });
            }
        }
        if !self.initialised() {
            let mut c = self.command("initdb");
            c.arg("-D").arg(self.data_dir()).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
            self.run("initdb", c)?;
        }
        if self.running() {
            return Ok(false);
        }
        if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            return Err(Error::PortInUse { port: self.port });
        }
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            self.port,
            self.socket_dir().display()
        );
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data_dir()).arg("-l").arg(self.root.join("server.log")).args(["-w", "-t", "60", "-o"]);
        c.arg(opts).arg("start");
        let log = self.root.join("server.log");
        self.run("pg_ctl start", c).map_err(|e| match e {
            Error::Command { detail, .. } => Error::Start {
                port: self.port,
                detail: detail.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string(),
                log,
            },
            other => other,
        })?;
        Ok(true)
    }

    /// Stop the server, keeping its data. Returns whether it was running.
    pub fn stop(&self) -> Result<bool> {
        if !self.running() {
            return Ok(false);
        }
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w", "stop"]);
        self.run("pg_ctl stop", c)?;
        Ok(true)
    }
}

/// What `portalctl up` records in `<state>/local.json` so that `status` (and `up` again) find the
/// running local mode: its ports, and where its database is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    /// The portal server's public port on 127.0.0.1.
    pub port: u16,
    /// The operations listener's port on 127.0.0.1.
    pub ops_port: u16,
    /// The private PostgreSQL's port; `None` when `up` used an existing server (`--database-url`),
    /// whose URL is then kept in `<state>/secrets/database-url` (mode 0600).
    pub db_port: Option<u16>,
}

/// File name of [`LocalState`] in the state directory.
pub const STATE_FILE: &str = "local.json";
/// File name of an existing server's URL below `<state>/secrets/`.
const DATABASE_URL_FILE: &str = "database-url";

impl LocalState {
    /// The local mode recorded in `state_dir`, if `up` ever ran there.
    pub fn read(state_dir: &Path) -> Result<Option<LocalState>> {
        let path = state_dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Io { path, source: std::io::Error::new(std::io::ErrorKind::InvalidData, e) }),
        }
    }

    /// Record the local mode (and an existing server's URL, privately) in `state_dir`.
    pub fn write(&self, state_dir: &Path, database_url: Option<&str>) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if let Some(url) = database_url {
            let dir = state_dir.join("secrets");
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let path = dir.join(DATABASE_URL_FILE);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
            f.write_all(url.as_bytes()).map_err(io(&path))?;
        }
        let path = state_dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(self).expect("plain struct");
        std::fs::write(&path, text + "\n").map_err(io(&path))
    }

    /// The superuser URL of the local mode's database: the private PostgreSQL's, or the one
    /// given to `up --database-url`.
    pub fn database_url(&self, state_dir: &Path) -> Result<String> {
        match self.db_port {
            Some(port) => Ok(superuser_url(port)),
            None => {
                let path = state_dir.join("secrets").join(DATABASE_URL_FILE);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_string())
                    .map_err(|source| Error::Io { path, source })
            }
        }
    }
}
