//! Runs the browser half of the audit, `tools/audit/audit.mjs`, with node: the job as JSON on its stdin, the raw
//! report as JSON on its stdout, progress on stderr (passed on unless `--quiet`).

use super::{Error, RawReport, LEGAL_PATHS};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where the browser finds the portals.
#[derive(Debug, Clone)]
pub enum Target {
    /// Plain HTTP to this address (`IP:PORT`) for every hostname, the Host header naming the tenant.
    Address(String),
    /// `https://<hostname>/`, through DNS, as citizens reach the portal.
    Https,
}

/// One tenant to audit: its slug and the hostname its pages are asked under.
#[derive(Debug, Clone, Serialize)]
pub struct TenantTarget {
    pub tenant: String,
    pub host: String,
}

/// How to run the browser.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: PathBuf,
    pub chromium: PathBuf,
    /// The directory of `audit.mjs` and its `node_modules` (`npm ci --prefix tools/audit`).
    pub tools_dir: PathBuf,
    pub target: Target,
    /// Tenants audited at once (one browser tab each).
    pub concurrency: usize,
    /// Per page load.
    pub page_timeout: Duration,
    /// Pass the script's progress lines (`audited espelkamp: 6 pages`) on to stderr.
    pub progress: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Job<'a> {
    chromium: &'a Path,
    resolve: Option<&'a str>,
    scheme: &'static str,
    concurrency: usize,
    timeout_ms: u64,
    legal_paths: &'a [&'a str],
    search_fallback: &'static str,
    tenants: &'a [TenantTarget],
}

/// The first Chromium of the usual Debian and Ubuntu paths.
pub fn default_chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// `tools/audit` under the current directory, else in the sources this binary was built from.
pub fn default_tools_dir() -> PathBuf {
    let here = PathBuf::from("tools/audit");
    if here.join("audit.mjs").exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/audit")
}

impl Config {
    /// Check that node, Chromium and the npm packages are there, before any page is asked.
    pub fn check(&self) -> Result<(), Error> {
        match Command::new(&self.node).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(Error::NoNode(format!("{} --version exited with {s}", self.node.display()))),
            Err(e) => return Err(Error::NoNode(format!("{}: {e}", self.node.display()))),
        }
        if !self.chromium.is_file() {
            return Err(Error::NoChromium(self.chromium.display().to_string()));
        }
        let modules = self.tools_dir.join("node_modules");
        if !self.tools_dir.join("audit.mjs").is_file()
            || !modules.join("axe-core").is_dir()
            || !modules.join("playwright-core").is_dir()
        {
            return Err(Error::NoTools(self.tools_dir.display().to_string()));
        }
        Ok(())
    }

    /// Load every tenant's pages and run axe-core on them.
    pub fn run(&self, tenants: &[TenantTarget]) -> Result<RawReport, Error> {
        self.check()?;
        let job = Job {
            chromium: &self.chromium,
            resolve: match &self.target {
                Target::Address(a) => Some(a.as_str()),
                Target::Https => None,
            },
            scheme: match self.target {
                Target::Address(_) => "http",
                Target::Https => "https",
            },
            concurrency: self.concurrency.max(1),
            timeout_ms: self.page_timeout.as_millis() as u64,
            legal_paths: LEGAL_PATHS,
            search_fallback: "Personalausweis",
            tenants,
        };
        let input = serde_json::to_vec(&job).map_err(|e| Error::Report(e.to_string()))?;
        let mut child = Command::new(&self.node)
            .arg("audit.mjs")
            .current_dir(&self.tools_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Io { what: format!("{} audit.mjs", self.node.display()), source })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        // Progress goes on to stderr as it comes; all of it is kept for an error message.
        let child_err = child.stderr.take().expect("piped stderr");
        let progress = self.progress;
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut all = String::new();
            for line in std::io::BufReader::new(child_err).lines().map_while(Result::ok) {
                if progress {
                    eprintln!("{line}");
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let out = child
            .wait_with_output()
            .map_err(|source| Error::Io { what: format!("{} audit.mjs", self.node.display()), source })?;
        let _ = writer.join();
        let stderr = reader.join().unwrap_or_default().trim().to_string();
        if !out.status.success() {
            if out.status.code() == Some(3) {
                return Err(Error::Browser(stderr));
            }
            return Err(Error::Script { code: out.status.code(), stderr });
        }
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Report(e.to_string()))
    }
}
