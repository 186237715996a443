//! Output formats shared by all commands: tables for people, JSON and YAML for machines.

use clap::ValueEnum;
use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// `-o` / `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// JSON, one document, for scripts and CI.
    Json,
    /// YAML, one document.
    Yaml,
    /// A Markdown report (`status` only).
    Markdown,
    /// A self-contained HTML report (`status` and `audit`).
    Html,
    /// Comma-separated values with a header row (`feedback` only).
    Csv,
}

/// Serialize a value as JSON or YAML text (with a trailing newline).
pub fn to_text<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Markdown | OutputFormat::Html => {
            anyhow::bail!(
                "-o markdown and -o html are reports of `portalctl status` (and -o html of `portalctl audit`); use -o \
                 table, json or yaml here"
            )
        }
        OutputFormat::Csv => anyhow::bail!("-o csv is printed by `portalctl feedback` only"),
        OutputFormat::Json | OutputFormat::Table => {
            let mut s = serde_json::to_string_pretty(value)?;
            s.push('\n');
            s
        }
        OutputFormat::Yaml => serde_saphyr::to_string(value)?,
    })
}

/// Write a command's output to the file given by `--out`, or to stdout without one.
pub fn emit(out: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Print a value as JSON or YAML.
pub fn print_structured<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<()> {
    print!("{}", to_text(value, format)?);
    Ok(())
}

/// A table with a header row, plain ASCII when colours are off (pipes, CI logs).
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    t
}

/// Render a table with trailing spaces trimmed (stable for snapshots and `grep`).
pub fn render_table(t: &Table) -> String {
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
