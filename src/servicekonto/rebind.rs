//! Moving every tenant of a group to another Servicekonto provider.
//!
//! [`plan`] is pure: it edits the tenant files' YAML text minimally (only the lines of
//! `spec.servicekonto` it sets; comments and everything else stay byte for byte) and
//! validates all edited files together with [`crate::tenant::build`]. [`apply`] then stages
//! new SP key pairs and metadata in `<secrets>/<group>/pending/`, keeps the old keys as
//! `*.previous.*`, installs the new ones and writes the tenant files — all tenants or none.
//! [`confirm`] drops the previous keys once the IdP operator has registered the new metadata.

use super::keys::{self, pending_dir, KeyPaths, SpKeys};
use super::metadata::{canonical_base_url, sp_metadata, SpMetadataParams};
use super::{Error, Result};
use crate::tenant::{self, Catalog, Environment, Protocol, Provider, SourceFile, Tenant};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Name of the record of an unconfirmed rebind in the group's pending area.
pub const RECORD_FILE: &str = "rebind.json";

/// What a rebind changes for one tenant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub tenant: String,
    /// The tenant file.
    pub path: String,
    pub from: Option<String>,
    pub to: String,
    pub environment: Environment,
    /// A new SP key pair is generated (the new provider speaks SAML).
    pub new_keys: bool,
    #[serde(skip)]
    pub new_text: String,
    #[serde(skip)]
    pub tenant_resolved: Option<Box<Tenant>>,
}

/// The whole rebind of a group.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub group: String,
    pub to: String,
    pub changes: Vec<Change>,
    /// Tenants already bound to the target provider.
    pub unchanged: Vec<String>,
}

/// Options of a rebind.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Environment whose keys are generated (default: each tenant's binding environment).
    pub environment: Option<Environment>,
    /// IdP metadata URL (SAML) to set together with the provider.
    pub idp_metadata_url: Option<String>,
}

/// Compute the rebind of `group` to `to`, with every edited file validated in memory.
pub fn plan(files: &[SourceFile], catalog: &Catalog, group: &str, to: Provider, opts: &Options) -> Result<Plan> {
    if catalog.group(group).is_none() {
        return Err(Error::Rebind(format!("no rollout group {group:?}")));
    }
    let mut edited: Vec<SourceFile> = files.to_vec();
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for t in catalog.tenants_of(group) {
        if t.servicekonto.as_ref().is_some_and(|b| b.provider == to) && opts.idp_metadata_url.is_none() {
            unchanged.push(t.slug.clone());
            continue;
        }
        let idx = edited
            .iter()
            .position(|f| f.path == t.source)
            .ok_or_else(|| Error::Rebind(format!("tenant {}: its file {} was not read", t.slug, t.source)))?;
        let mut fields: Vec<(&str, &str)> = vec![("provider", to.as_str())];
        if let Some(u) = &opts.idp_metadata_url {
            fields.push(("idpMetadataUrl", u));
        }
        let new_text = set_servicekonto_fields(&edited[idx].text, &fields)
            .map_err(|reason| Error::Edit { path: t.source.clone(), reason })?;
        edited[idx].text = new_text.clone();
        changes.push(Change {
            tenant: t.slug.clone(),
            path: t.source.clone(),
            from: t.servicekonto.as_ref().map(|b| b.provider.as_str().to_string()),
            to: to.as_str().to_string(),
            environment: opts.environment.or(t.servicekonto.as_ref().map(|b| b.environment)).unwrap_or_default(),
            new_keys: to.protocol() == Protocol::Saml,
            new_text,
            tenant_resolved: None,
        });
    }
    let built = tenant::build(&edited);
    if built.error_count() > 0 {
        let msgs: Vec<String> = built
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::diagnostics::Severity::Error)
            .map(|d| d.to_string())
            .collect();
        return Err(Error::Invalid(msgs.join("\n")));
    }
    for c in &mut changes {
        let t = built
            .catalog
            .tenant(&c.tenant)
            .ok_or_else(|| Error::Rebind(format!("tenant {} vanished from the edited files", c.tenant)))?;
        if t.servicekonto.as_ref().map(|b| b.provider) != Some(to) {
            return Err(Error::Rebind(format!("tenant {}: the edit did not bind it to {}", c.tenant, to.as_str())));
        }
        c.tenant_resolved = Some(Box::new(t.clone()));
    }
    Ok(Plan { group: group.to_string(), to: to.as_str().to_string(), changes, unchanged })
}

/// The record of an unconfirmed rebind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub group: String,
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tenants: Vec<RecordTenant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordTenant {
    pub slug: String,
    pub from: Option<String>,
    pub environment: Environment,
    /// SP metadata to hand to the IdP operator.
    pub metadata: Option<PathBuf>,
    /// The previous key pair kept until confirmation, if there was one.
    pub previous_key: Option<PathBuf>,
    pub previous_cert: Option<PathBuf>,
}

/// Carry out a plan: stage keys and metadata, keep old keys, write the tenant files.
pub fn apply(plan: &Plan, secrets: &Path) -> Result<Record> {
    let pending = pending_dir(secrets, &plan.group);
    if pending.join(RECORD_FILE).exists() {
        return Err(Error::Rebind(format!(
            "group {} has an unconfirmed rebind ({}); run `portalctl servicekonto confirm --group {}` first",
            plan.group,
            pending.join(RECORD_FILE).display(),
            plan.group
        )));
    }
    let now = OffsetDateTime::now_utc();
    for c in &plan.changes {
        if KeyPaths::previous(secrets, resolved(c), c.environment).exist() {
            return Err(Error::Rebind(format!(
                "tenant {}: previous keys from an earlier rebind still exist; confirm or remove them first",
                c.tenant
            )));
        }
    }

    // 1. Stage new key pairs and metadata (in parallel; RSA key generation takes seconds).
    let staged: Vec<Result<Option<PathBuf>>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let chunks: Vec<&[Change]> = plan.changes.chunks(plan.changes.len().div_ceil(workers).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let pending = &pending;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| -> Result<Option<PathBuf>> {
                            if !c.new_keys {
                                return Ok(None);
                            }
                            let t = c.tenant_resolved.as_deref().expect("resolved");
                            let new = SpKeys::generate(t, c.environment, now)?;
                            new.write(&KeyPaths::pending(secrets, t, c.environment))?;
                            let base = canonical_base_url(t);
                            let xml = sp_metadata(&SpMetadataParams::for_environment(t, c.environment, &base, &new)?)?;
                            let md =
                                pending.join(format!("{}.saml-{}.metadata.xml", t.slug, keys::env_name(c.environment)));
                            std::fs::write(&md, xml).map_err(|e| Error::io(&md, e))?;
                            Ok(Some(md))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("key generation thread")).collect()
    });
    let mut metadata_files = Vec::new();
    for r in staged {
        match r {
            Ok(m) => metadata_files.push(m),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&pending);
                return Err(e);
            }
        }
    }

    // 2. Keep the old keys, install the new ones, write the tenant files.
    let mut record = Record { group: plan.group.clone(), to: plan.to.clone(), at: now, tenants: Vec::new() };
    for (c, md) in plan.changes.iter().zip(metadata_files) {
        let t = resolved(c);
        let current = KeyPaths::current(secrets, t, c.environment);
        let previous = KeyPaths::previous(secrets, t, c.environment);
        let mut rt = RecordTenant {
            slug: c.tenant.clone(),
            from: c.from.clone(),
            environment: c.environment,
            metadata: md.clone(),
            previous_key: None,
            previous_cert: None,
        };
        if current.exist() {
            rename(&current.key, &previous.key)?;
            rename(&current.cert, &previous.cert)?;
            rt.previous_key = Some(previous.key.clone());
            rt.previous_cert = Some(previous.cert.clone());
        }
        if md.is_some() {
            let staged = KeyPaths::pending(secrets, t, c.environment);
            rename(&staged.key, &current.key)?;
            rename(&staged.cert, &current.cert)?;
        }
        write_text_atomically(Path::new(&c.path), &c.new_text)?;
        record.tenants.push(rt);
    }
    let json = serde_json::to_string_pretty(&record).map_err(|e| Error::Rebind(e.to_string()))?;
    std::fs::create_dir_all(&pending).map_err(|e| Error::io(&pending, e))?;
    std::fs::write(pending.join(RECORD_FILE), json).map_err(|e| Error::io(&pending.join(RECORD_FILE), e))?;
    Ok(record)
}

fn resolved(c: &Change) -> &Tenant {
    c.tenant_resolved.as_deref().expect("plan() resolves every change")
}

/// After the IdP operator confirmed the new metadata: drop the previous keys and the pending area.
pub fn confirm(secrets: &Path, group: &str) -> Result<Record> {
    let pending = pending_dir(secrets, group);
    let path = pending.join(RECORD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Rebind(format!("group {group} has no unconfirmed rebind ({} does not exist)", path.display()))
        } else {
            Error::io(&path, e)
        }
    })?;
    let record: Record = serde_json::from_str(&text).map_err(|e| Error::Rebind(format!("{}: {e}", path.display())))?;
    for t in &record.tenants {
        for p in [&t.previous_key, &t.previous_cert].into_iter().flatten() {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
    }
    std::fs::remove_dir_all(&pending).map_err(|e| Error::io(&pending, e))?;
    Ok(record)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(from, e))
}

fn write_text_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("yaml.rebind-tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The key of a `key: value` line (after indentation), if it is one.
fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start_matches(' ');
    let colon = t.find(':')?;
    let key = &t[..colon];
    let after = &t[colon + 1..];
    (!key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && (after.is_empty() || after.starts_with([' ', '\n', '\r'])))
    .then_some(key)
}

/// The text after `key:` without line ending.
fn value_part(line: &str) -> &str {
    let t = line.trim_start_matches(' ');
    t[t.find(':').map_or(t.len(), |i| i + 1)..].trim_end_matches(['\n', '\r'])
}

/// Byte index of the ` # comment` of a value, if any (outside quotes).
fn comment_start(value: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in value.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev == ' ' => return Some(i),
            None => {}
        }
        prev = c;
    }
    None
}

/// The trailing `# comment` of a value, or "".
fn trailing_comment(value: &str) -> &str {
    comment_start(value).map_or("", |i| value[i..].trim_end())
}

fn yaml_scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:%?=&~".contains(c))
        && !v.contains(": ")
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if plain {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Set `spec.servicekonto.<field>` values in a tenant file's text, touching only those lines
/// (or adding them, or adding the `servicekonto:` block at the end of `spec`).
pub fn set_servicekonto_fields(text: &str, fields: &[(&str, &str)]) -> Result<String, String> {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        let last = lines.pop().unwrap_or_default();
        lines.push(format!("{last}{nl}"));
    }
    let spec = lines
        .iter()
        .position(|l| indent_of(l) == 0 && key_of(l) == Some("spec"))
        .ok_or("the file has no top-level spec:")?;
    if !strip_comment(value_part(&lines[spec])).is_empty() {
        return Err("spec is not a block mapping; edit the file by hand".into());
    }
    let spec_end = block_end(&lines, spec, 0);
    let child_indent = lines[spec + 1..spec_end]
        .iter()
        .find(|l| !is_blank_or_comment(l))
        .map(|l| indent_of(l))
        .ok_or("spec is empty")?;
    let sk = (spec + 1..spec_end)
        .find(|&i| indent_of(&lines[i]) == child_indent && key_of(&lines[i]) == Some("servicekonto"));
    let Some(sk) = sk else {
        // Append a servicekonto block after the last content line of spec.
        let last = (spec + 1..spec_end).rev().find(|&i| !is_blank_or_comment(&lines[i])).unwrap_or(spec);
        let pad = " ".repeat(child_indent);
        let mut block = vec![format!("{pad}servicekonto:{nl}")];
        for (k, v) in fields {
            block.push(format!("{pad}{pad}{k}: {}{nl}", yaml_scalar(v)));
        }
        lines.splice(last + 1..last + 1, block);
        return Ok(lines.concat());
    };
    if !strip_comment(value_part(&lines[sk])).is_empty() {
        return Err("spec.servicekonto is written in flow style; edit the file by hand".into());
    }
    let sk_end = block_end(&lines, sk, child_indent);
    let field_indent = lines[sk + 1..sk_end]
        .iter()
        .find(|l| !is_blank_or_comment(l))
        .map(|l| indent_of(l))
        .unwrap_or(child_indent * 2);
    let pad = " ".repeat(field_indent);
    let mut inserts = Vec::new();
    for (k, v) in fields {
        let found = (sk + 1..sk_end).find(|&i| indent_of(&lines[i]) == field_indent && key_of(&lines[i]) == Some(k));
        match found {
            Some(i) => {
                let old = value_part(&lines[i]);
                if strip_comment(old).is_empty() {
                    return Err(format!("spec.servicekonto.{k} is not a plain value; edit the file by hand"));
                }
                let comment = trailing_comment(old);
                let comment = if comment.is_empty() { String::new() } else { format!(" {comment}") };
                lines[i] = format!("{pad}{k}: {}{comment}{nl}", yaml_scalar(v));
            }
            None => inserts.push(format!("{pad}{k}: {}{nl}", yaml_scalar(v))),
        }
    }
    lines.splice(sk + 1..sk + 1, inserts);
    Ok(lines.concat())
}

fn strip_comment(v: &str) -> &str {
    comment_start(v).map_or(v, |i| &v[..i]).trim()
}

/// Index after the last line belonging to the block that starts at `start` (at `indent`).
fn block_end(lines: &[String], start: usize, indent: usize) -> usize {
    let mut end = start + 1;
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        if is_blank_or_comment(l) {
            continue;
        }
        if indent_of(l) <= indent {
            break;
        }
        end = i + 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const FILE: &str = "# Stadt Detmold\napiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: detmold\nspec:\n  displayName: \"Stadt Detmold\"\n  servicekonto:\n    provider: servicekonto-nrw   # until July 2024\n    trustLevel: substantiell\n  database:\n    schema: t_detmold\n";

    #[test]
    fn replaces_only_the_provider_value_and_keeps_its_comment() {
        let out = set_servicekonto_fields(FILE, &[("provider", "bundid")]).unwrap();
        assert_eq!(
            out,
            FILE.replace("provider: servicekonto-nrw   # until July 2024", "provider: bundid # until July 2024")
        );
    }

    #[test]
    fn inserts_a_missing_field_into_the_block() {
        let file = FILE.replace("    provider: servicekonto-nrw   # until July 2024\n", "");
        let out = set_servicekonto_fields(&file, &[("provider", "bundid")]).unwrap();
        assert_eq!(out, file.replace("  servicekonto:\n", "  servicekonto:\n    provider: bundid\n"));
    }

    #[test]
    fn adds_a_servicekonto_block_at_the_end_of_spec() {
        let file = "spec:\n  displayName: X\n  # trailing comment\ngoLive: 1\n";
        let out =
            set_servicekonto_fields(file, &[("provider", "bundid"), ("idpMetadataUrl", "https://idp/md")]).unwrap();
        assert_eq!(
            out,
            "spec:\n  displayName: X\n  servicekonto:\n    provider: bundid\n    idpMetadataUrl: https://idp/md\n  # trailing comment\ngoLive: 1\n"
        );
    }

    #[test]
    fn flow_style_is_refused() {
        let file = "spec:\n  servicekonto: { provider: saml }\n";
        assert!(set_servicekonto_fields(file, &[("provider", "bundid")]).unwrap_err().contains("flow style"));
    }
}
