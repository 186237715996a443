//! Findings about tenant and group files: what is wrong, where (file, line, column, field),
//! and how to fix it. Validation collects all of them at once; nothing stops at the first.

use serde::Serialize;
use std::fmt;

/// How bad a finding is. Errors fail `validate` (exit code 1); warnings fail it only
/// with `--strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A position in a source file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

impl Position {
    pub fn file(file: impl Into<String>) -> Self {
        Position { file: file.into(), line: None, column: None }
    }

    pub fn at(file: impl Into<String>, loc: serde_saphyr::Location) -> Self {
        let (line, column) = (loc.line(), loc.column());
        // serde-saphyr reports 0 for an unknown location.
        Position { file: file.into(), line: (line > 0).then_some(line), column: (column > 0).then_some(column) }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        Ok(())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `duplicate-hostname`.
    pub code: &'static str,
    #[serde(flatten)]
    pub position: Position,
    /// The tenant the file declares, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The group the finding is about, for group files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Dotted path of the offending field, e.g. `spec.hostnames[1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Where the other half of a conflict is (duplicates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Position>,
}

impl Diagnostic {
    pub fn error(code: &'static str, position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            position,
            tenant: None,
            group: None,
            field: None,
            message: message.into(),
            hint: None,
            related: None,
        }
    }

    pub fn warning(code: &'static str, position: Position, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, position, message) }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn related(mut self, related: Position) -> Self {
        self.related = Some(related);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}[{}]", self.position, self.code)?;
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(t) = &self.tenant {
            write!(f, " (tenant {t})")?;
        } else if let Some(g) = &self.group {
            write!(f, " (group {g})")?;
        }
        if let Some(r) = &self.related {
            write!(f, "\n  --> also at {r}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Sort findings for stable output: by file, line, column, then code.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.position.file, a.position.line, a.position.column, a.code, &a.message).cmp(&(
            &b.position.file,
            b.position.line,
            b.position.column,
            b.code,
            &b.message,
        ))
    });
}
