//! Reading a `tenants/` directory from disk (the IO edge of the tenant model).
//!
//! Layout: one directory per rollout group, holding `group.yaml` and one `<slug>.yaml`
//! per tenant. Other files (README.md, dotfiles) are ignored.

use super::{build, Built, SourceFile};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "tenant directory {path} does not exist{here}; run portalctl where the tenants/ directory is, or pass \
         --tenants DIR (or set PORTALCTL_TENANTS)",
        here = if path.is_relative() {
            std::env::current_dir().map(|d| format!(" (looked in {})", d.display())).unwrap_or_default()
        } else {
            String::new()
        }
    )]
    Missing { path: PathBuf },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Io { path: path.to_path_buf(), source }
}

/// Whether a file name is a YAML file we read.
fn is_yaml(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Collect the files of a tenants directory, sorted (directory, then file name).
pub fn read_dir(dir: &Path) -> Result<Vec<SourceFile>, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::Missing { path: dir.to_path_buf() });
    }
    let mut groups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    groups.sort();
    let mut files = Vec::new();
    for gdir in groups {
        let group_dir = gdir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&gdir)
            .map_err(io(&gdir))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| is_yaml(&n.to_string_lossy())))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            files.push(SourceFile { path: path.display().to_string(), group_dir: group_dir.clone(), stem, text });
        }
    }
    Ok(files)
}

/// Read and build a tenants directory.
pub fn load_dir(dir: &Path) -> Result<Built, LoadError> {
    Ok(build(&read_dir(dir)?))
}
