//! Resolution and validation of groups and tenants: per file, then across all files.

use super::model::*;
use super::*;
use crate::municipality::Registry;
use crate::names;
use crate::theme::{contrast_ratio, text_pairs, Rgb, AA_NORMAL_TEXT};
use std::collections::BTreeMap;

/// Schema for findings about a single file.
struct Ctx<'a> {
    file: &'a SourceFile,
    name: Option<String>,
    group: Option<String>,
    diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    fn new(file: &'a SourceFile) -> Self {
        Ctx { file, name: None, group: None, diags: Vec::new() }
    }

    fn pos<T>(&self, s: &S<T>) -> Position {
        Position::at(&self.file.path, s.referenced)
    }

    fn push(&mut self, mut d: Diagnostic) {
        if d.tenant.is_none() {
            d.tenant = self.name.clone();
        }
        if d.group.is_none() {
            d.group = self.group.clone();
        }
        self.diags.push(d);
    }

    fn error_at<T>(&mut self, code: &'static str, at: &S<T>, field: &str, msg: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::error(code, self.pos(at), msg).field(field);
        self.push(d);
        self.diags.last_mut().unwrap()
    }

    fn warn_at<T>(&mut self, code: &'static str, at: &S<T>, field: &str, msg: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::warning(code, self.pos(at), msg).field(field);
        self.push(d);
        self.diags.last_mut().unwrap()
    }

    fn error_file(&mut self, code: &'static str, field: &str, msg: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::error(code, Position::file(&self.file.path), msg).field(field);
        self.push(d);
        self.diags.last_mut().unwrap()
    }
}

trait HintExt {
    fn with_hint(&mut self, h: impl Into<String>);
}

impl HintExt for Diagnostic {
    fn with_hint(&mut self, h: impl Into<String>) {
        self.hint = Some(h.into());
    }
}

fn check_header(cx: &mut Ctx, api_version: &S<String>, kind: &S<String>, want_kind: &str) {
    if api_version.value != API_VERSION {
        cx.error_at(
            "api-version",
            api_version,
            "apiVersion",
            format!("unsupported apiVersion {:?}", api_version.value),
        )
        .with_hint(format!("this portalctl reads apiVersion: {API_VERSION}"));
    }
    if kind.value != want_kind {
        cx.error_at("kind", kind, "kind", format!("expected kind {want_kind}, found {:?}", kind.value)).with_hint(
            if want_kind == KIND_GROUP {
                "group.yaml declares the group (kind: RolloutGroup); tenants go in their own files"
            } else {
                "every file except group.yaml declares one tenant (kind: Tenant)"
            },
        );
    }
}

/// Reject anything that looks like key material written into a file.
fn check_inline_key_material(cx: &mut Ctx) {
    for (i, line) in cx.file.text.lines().enumerate() {
        if line.contains("-----BEGIN") || line.contains("PRIVATE KEY") {
            let col = line.find("-----").or_else(|| line.find("PRIVATE")).unwrap_or(0) as u64 + 1;
            let d = Diagnostic::error(
                "inline-secret",
                Position { file: cx.file.path.clone(), line: Some(i as u64 + 1), column: Some(col) },
                "key material written into the file",
            )
            .hint("keep keys in a Kubernetes Secret, a file or an environment variable and reference it under servicekonto.credentials");
            cx.push(d);
            return;
        }
    }
}

/// Group-level inherited values, still spanned for findings that blame the group file.
struct GroupCtx {
    group: Group,
    theme: Theme,
    servicekonto: Option<ServicekontoSpec>,
    placement: Placement,
    legal: Option<LegalSpec>,
    valid: bool,
}

fn resolve_theme(base: &Theme, spec: Option<&ThemeSpec>) -> Theme {
    let mut t = base.clone();
    if let Some(s) = spec {
        let set = |dst: &mut String, v: &Option<S<String>>| {
            if let Some(v) = v {
                dst.clone_from(&v.value);
            }
        };
        set(&mut t.primary_color, &s.primary_color);
        set(&mut t.on_primary_color, &s.on_primary_color);
        set(&mut t.text_color, &s.text_color);
        set(&mut t.background_color, &s.background_color);
        set(&mut t.accent_color, &s.accent_color);
        if s.logo.is_some() {
            t.logo.clone_from(&s.logo);
        }
        if let Some(f) = &s.font {
            t.font.clone_from(f);
        }
    }
    t
}

fn theme_field<'s>(spec: &'s ThemeSpec, name: &str) -> Option<&'s S<String>> {
    match name {
        "primaryColor" => spec.primary_color.as_ref(),
        "onPrimaryColor" => spec.on_primary_color.as_ref(),
        "textColor" => spec.text_color.as_ref(),
        "backgroundColor" => spec.background_color.as_ref(),
        "accentColor" => spec.accent_color.as_ref(),
        _ => None,
    }
}

/// Check the colours a file sets, and the contrast of every text pair that involves one of them.
fn check_theme(cx: &mut Ctx, spec: &ThemeSpec, resolved: &Theme, prefix: &str) {
    let mut bad_format = false;
    for name in ["primaryColor", "onPrimaryColor", "textColor", "backgroundColor", "accentColor"] {
        if let Some(v) = theme_field(spec, name) {
            if Rgb::parse(&v.value).is_none() {
                bad_format = true;
                cx.error_at("invalid-color", v, &format!("{prefix}.{name}"), format!("{:?} is not a colour", v.value))
                    .with_hint("write colours as #rrggbb, e.g. #004b87");
            }
        }
    }
    if bad_format {
        return;
    }
    for (fg_name, fg, bg_name, bg, usage) in text_pairs(resolved) {
        let at = theme_field(spec, fg_name).or_else(|| theme_field(spec, bg_name));
        let Some(at) = at else { continue };
        let (Some(f), Some(b)) = (Rgb::parse(fg), Rgb::parse(bg)) else { continue };
        let ratio = contrast_ratio(f, b);
        if ratio < AA_NORMAL_TEXT {
            let field = if theme_field(spec, fg_name).is_some() { fg_name } else { bg_name };
            cx.error_at(
                "contrast",
                at,
                &format!("{prefix}.{field}"),
                format!(
                    "{fg_name} {fg} on {bg_name} {bg} ({usage}) has contrast {ratio:.2}:1; WCAG 2.1 AA needs 4.5:1"
                ),
            )
            .with_hint(contrast_hint(fg_name, f, bg_name, b));
        }
    }
}

fn check_https_url<T: AsRef<str>>(cx: &mut Ctx, v: &S<T>, field: &str) {
    let s = v.value.as_ref();
    // Plain http is accepted only on the loopback interface (local test identity providers).
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"].iter().any(|p| s.starts_with(p));
    if !(s.starts_with("https://") || loopback) || s.len() <= "https://".len() || s.contains(char::is_whitespace) {
        cx.error_at("invalid-url", v, field, format!("{s:?} is not an https:// URL"))
            .with_hint("identity providers are reached over HTTPS only");
    }
}

fn check_servicekonto(cx: &mut Ctx, spec: &ServicekontoSpec, prefix: &str) {
    for (field, v) in [("clientSecret", &spec.client_secret), ("privateKey", &spec.private_key)] {
        if let Some(v) = v {
            cx.error_at("inline-secret", v, &format!("{prefix}.{field}"), format!("{field} written into the file"))
                .with_hint("reference the secret instead: credentials: { secretKeyRef: { name: ... } }, { env: VAR } or { file: PATH }");
        }
    }
    if let Some(creds) = &spec.credentials {
        let n = [creds.value.env.is_some(), creds.value.file.is_some(), creds.value.secret_key_ref.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if n != 1 {
            cx.error_at(
                "secret-ref",
                creds,
                &format!("{prefix}.credentials"),
                format!("a secret reference names exactly one source, found {n}"),
            )
            .with_hint("use one of env: VAR, file: PATH, secretKeyRef: { name: NAME, key: KEY }");
        }
        if let Some(r) = &creds.value.secret_key_ref {
            if let Err(e) = names::check_dns_subdomain(&r.name) {
                cx.error_at(
                    "secret-ref",
                    creds,
                    &format!("{prefix}.credentials.secretKeyRef.name"),
                    format!("Kubernetes Secret name {e}"),
                );
            }
        }
        if let Some(env) = &creds.value.env {
            if env.is_empty()
                || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || env.starts_with(|c: char| c.is_ascii_digit())
            {
                cx.error_at(
                    "secret-ref",
                    creds,
                    &format!("{prefix}.credentials.env"),
                    format!("{env:?} is not an environment variable name"),
                );
            }
        }
    }
    if let Some(u) = &spec.idp_metadata_url {
        check_https_url(cx, u, &format!("{prefix}.idpMetadataUrl"));
    }
    if let Some(u) = &spec.issuer {
        check_https_url(cx, u, &format!("{prefix}.issuer"));
    }
    if let Some(u) = &spec.entity_id {
        check_https_url(cx, u, &format!("{prefix}.entityId"));
    }
    if let Some(id) = &spec.online_service_id {
        if id.value.trim().is_empty() || id.value.len() > 256 || id.value.contains(char::is_control) {
            cx.error_at(
                "servicekonto-bundid",
                id,
                &format!("{prefix}.onlineServiceId"),
                "onlineServiceId must be a short text without control characters",
            );
        }
    }
    if let Some(attrs) = &spec.requested_attributes {
        let mut seen = std::collections::BTreeSet::new();
        for a in &attrs.value {
            if !seen.insert(a.name) {
                cx.error_at(
                    "servicekonto-bundid",
                    attrs,
                    &format!("{prefix}.requestedAttributes"),
                    format!("attribute {} is requested twice", a.name.as_str()),
                );
            }
        }
    }
    if let Some(p) = &spec.provider {
        if p.value == Provider::ServicekontoNrw {
            cx.warn_at(
                "provider-retired",
                p,
                &format!("{prefix}.provider"),
                "Servicekonto.NRW was shut down in July 2024",
            )
            .with_hint("rebind to the federal BundID: portalctl servicekonto rebind --to bundid");
        }
    }
}

fn resolve_group(file: &SourceFile, g: &GroupFile, cx: &mut Ctx) -> GroupCtx {
    cx.group = Some(g.metadata.name.value.clone());
    check_header(cx, &g.api_version, &g.kind, KIND_GROUP);
    let name = &g.metadata.name;
    if let Err(e) = names::check_slug(&name.value) {
        cx.error_at("invalid-name", name, "metadata.name", e.to_string())
            .with_hint("group names are DNS labels: lower-case letters, digits, '-'");
    } else if name.value != file.group_dir {
        cx.error_at(
            "name-mismatch",
            name,
            "metadata.name",
            format!("group {:?} is declared in directory {:?}", name.value, file.group_dir),
        )
        .with_hint(format!("rename the directory to {0:?} or set metadata.name: {1}", name.value, file.group_dir));
    }
    if g.spec.waves.is_empty() {
        cx.error_file("no-waves", "spec.waves", "a group needs at least one wave")
            .with_hint("e.g. waves: [{ name: pilot }, { name: main }]");
    }
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for (i, w) in g.spec.waves.iter().enumerate() {
        if let Err(e) = names::check_slug(&w.name.value) {
            cx.error_at("invalid-name", &w.name, &format!("spec.waves[{i}].name"), format!("wave {e}"));
        }
        if seen.insert(&w.name.value, ()).is_some() {
            cx.error_at(
                "duplicate-wave",
                &w.name,
                &format!("spec.waves[{i}].name"),
                format!("wave {:?} is listed twice", w.name.value),
            );
        }
    }
    let d = &g.spec.defaults;
    let namespace = match &d.namespace {
        Some(ns) => {
            if let Err(e) = names::check_dns_label(&ns.value) {
                cx.error_at(
                    "invalid-namespace",
                    ns,
                    "spec.defaults.namespace",
                    format!("namespace {:?} {e}", ns.value),
                );
            }
            ns.value.clone()
        }
        None => format!("portal-{}", g.metadata.name.value),
    };
    let image = match &d.image {
        Some(img) => {
            let v = &img.value;
            let last = v.rsplit('/').next().unwrap_or(v);
            if v.is_empty() || v.contains(char::is_whitespace) {
                cx.error_at("invalid-image", img, "spec.defaults.image", format!("{v:?} is not an image reference"));
            } else if !(last.contains(':') || v.contains('@')) || v.ends_with(":latest") {
                cx.warn_at(
                    "image-unpinned",
                    img,
                    "spec.defaults.image",
                    format!("image {v:?} is not pinned to a version"),
                )
                .with_hint("pin a tag or digest so that every replica runs the same code");
            }
            v.clone()
        }
        None => DEFAULT_IMAGE.to_string(),
    };
    let theme = resolve_theme(&Theme::default(), d.theme.as_ref());
    if let Some(t) = &d.theme {
        check_theme(cx, t, &theme, "spec.defaults.theme");
    }
    if let Some(sk) = &d.servicekonto {
        check_servicekonto(cx, sk, "spec.defaults.servicekonto");
    }
    check_inline_key_material(cx);
    GroupCtx {
        group: Group {
            name: g.metadata.name.value.clone(),
            display_name: g.spec.display_name.clone(),
            operator: g.spec.operator.clone(),
            waves: g
                .spec
                .waves
                .iter()
                .map(|w| Wave { name: w.name.value.clone(), description: w.description.clone() })
                .collect(),
            namespace,
            cluster_context: d.cluster_context.clone(),
            image,
            content_threshold: d.content_threshold.unwrap_or(DEFAULT_CONTENT_THRESHOLD),
            source: file.path.clone(),
        },
        theme,
        servicekonto: None,
        placement: d.placement.unwrap_or_default(),
        legal: d.legal.clone(),
        valid: true,
    }
}

fn merge_servicekonto(group: Option<&ServicekontoSpec>, own: Option<&ServicekontoSpec>) -> Option<MergedSk> {
    if group.is_none() && own.is_none() {
        return None;
    }
    fn pick<'a, T>(
        own: Option<&'a ServicekontoSpec>,
        group: Option<&'a ServicekontoSpec>,
        f: impl Fn(&'a ServicekontoSpec) -> Option<&'a T>,
    ) -> Option<&'a T> {
        own.and_then(&f).or_else(|| group.and_then(&f))
    }
    Some(MergedSk {
        provider: pick(own, group, |s| s.provider.as_ref()).map(|p| p.value),
        environment: pick(own, group, |s| s.environment.as_ref()).copied().unwrap_or_default(),
        trust_level: pick(own, group, |s| s.trust_level.as_ref()).copied().unwrap_or_default(),
        idp_metadata_url: pick(own, group, |s| s.idp_metadata_url.as_ref()).map(|v| v.value.clone()),
        issuer: pick(own, group, |s| s.issuer.as_ref()).map(|v| v.value.clone()),
        entity_id: own.and_then(|s| s.entity_id.as_ref()).map(|v| v.value.clone()),
        client_id: own.and_then(|s| s.client_id.as_ref()).map(|v| v.value.clone()),
        credentials: own.and_then(|s| s.credentials.as_ref()).map(|v| v.value.clone()),
        allow_legacy_cbc: pick(own, group, |s| s.allow_legacy_cbc.as_ref()).is_some_and(|v| v.value),
        online_service_id: pick(own, group, |s| s.online_service_id.as_ref()).map(|v| v.value.clone()),
        requested_attributes: pick(own, group, |s| s.requested_attributes.as_ref()).map(|v| v.value.clone()),
    })
}

struct MergedSk {
    provider: Option<Provider>,
    environment: Environment,
    trust_level: TrustLevel,
    idp_metadata_url: Option<String>,
    issuer: Option<String>,
    entity_id: Option<String>,
    client_id: Option<String>,
    credentials: Option<SecretRef>,
    allow_legacy_cbc: bool,
    online_service_id: Option<String>,
    requested_attributes: Option<Vec<RequestedAttribute>>,
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The AGS of a municipality or Kreis and its parent Kreis; returns the Kreis (5 digits) if known.
fn check_ags(cx: &mut Ctx, s: &TenantSpec, ags_spanned: &S<String>, kind: MunicipalityKind) -> Option<String> {
    let file_path = cx.file.path.clone();
    let registry = Registry::official();
    let ags = &ags_spanned.value;
    let mut kreis = s.parent.as_ref().map(|p| p.value.clone());
    if !is_digits(ags, 8) {
        cx.error_at("invalid-ags", ags_spanned, "spec.ags", format!("AGS {ags:?} is not 8 digits")).with_hint(
            "the Amtlicher Gemeindeschlüssel has 8 digits, e.g. \"05770008\"; quote it so that leading zeros stay",
        );
    } else {
        if let Some(p) = &s.parent {
            if !is_digits(&p.value, 5) {
                cx.error_at(
                    "invalid-parent",
                    p,
                    "spec.parent",
                    format!("parent {:?} is not a 5-digit Kreis AGS", p.value),
                )
                .with_hint("the parent is the Kreis's AGS, the first five digits of a member's AGS");
            } else if !ags.starts_with(&p.value) {
                cx.error_at(
                    "ags-parent-mismatch",
                    ags_spanned,
                    "spec.ags",
                    format!("AGS {ags} does not lie in Kreis {}", p.value),
                )
                .with_hint(format!(
                    "a municipality's AGS starts with its Kreis's AGS; Kreis of {ags} is {}",
                    &ags[..5]
                ));
            } else if registry.kreis(&p.value).is_none() {
                cx.warn_at(
                    "unknown-kreis",
                    p,
                    "spec.parent",
                    format!("{} is not in the official list of Kreise", p.value),
                );
            }
        } else {
            kreis = Some(ags[..5].to_string());
        }
        match kind {
            MunicipalityKind::Kreis => {
                if !ags.ends_with("000") || registry.kreis(&ags[..5]).is_none() {
                    cx.error_at("invalid-ags", ags_spanned, "spec.ags", format!("{ags} is not the AGS of a Kreis"))
                        .with_hint("a Kreis tenant's AGS is the Kreis's 5 digits followed by 000, e.g. \"05370000\"");
                }
            }
            _ => match registry.municipality(ags) {
                None => {
                    cx.warn_at(
                        "unknown-ags",
                        ags_spanned,
                        "spec.ags",
                        format!("AGS {ags} is not in the official municipality list"),
                    )
                    .with_hint("check the number; scaffold with `portalctl tenant new --ags` to take it from the list");
                }
                Some(m) => {
                    let official_kind = if m.is_kreisfrei() {
                        MunicipalityKind::KreisfreieStadt
                    } else if m.typ == "gemeinde" || m.typ == "mitgliedsgemeinde" {
                        MunicipalityKind::Gemeinde
                    } else {
                        MunicipalityKind::Stadt
                    };
                    if official_kind != kind {
                        cx.push(
                            Diagnostic::warning(
                                "kind-mismatch",
                                Position::at(&file_path, ags_spanned.referenced),
                                format!(
                                    "{} is officially a {}, declared as {}",
                                    m.name,
                                    official_kind.as_str(),
                                    kind.as_str()
                                ),
                            )
                            .field("spec.kind"),
                        );
                    }
                }
            },
        }
    }

    kreis
}

/// A Dachportal stands for the region: it has neither an AGS nor a parent Kreis.
fn check_dachportal_identity(cx: &mut Ctx, s: &TenantSpec) {
    if let Some(a) = &s.ags {
        cx.error_at("dachportal-ags", a, "spec.ags", format!("a Dachportal has no AGS, found {:?}", a.value)).with_hint(
            "a Dachportal stands for the whole region, not one municipality: remove spec.ags (the member portals keep theirs)",
        );
    }
    if let Some(p) = &s.parent {
        cx.error_at(
            "dachportal-parent",
            p,
            "spec.parent",
            format!("a Dachportal has no parent Kreis, found {:?}", p.value),
        )
        .with_hint(
            "remove spec.parent; the Dachportal's members are listed under spec.members (default: the whole group)",
        );
    }
}

fn resolve_tenant(file: &SourceFile, t: &TenantFile, group: Option<&GroupCtx>, cx: &mut Ctx) -> Option<Tenant> {
    let slug = &t.metadata.name;
    cx.name = Some(slug.value.clone());
    check_header(cx, &t.api_version, &t.kind, KIND_TENANT);
    if let Err(e) = names::check_slug(&slug.value) {
        cx.error_at("invalid-name", slug, "metadata.name", e.to_string())
            .with_hint("tenant slugs are DNS labels: lower-case ASCII, digits, '-' (ä→ae, ö→oe, ü→ue, ß→ss)");
    } else if slug.value != file.stem {
        cx.error_at(
            "name-mismatch",
            slug,
            "metadata.name",
            format!("tenant {:?} is declared in file {:?}", slug.value, format!("{}.yaml", file.stem)),
        )
        .with_hint(format!("name the file {}.yaml", slug.value));
    }
    let s = &t.spec;
    if s.display_name.value.trim().is_empty() {
        cx.error_at("empty-field", &s.display_name, "spec.displayName", "display name is empty");
    }

    // AGS and parent Kreis (none for a Dachportal).
    let kind = s.kind.value;
    let (ags, kreis) = if kind.is_dachportal() {
        check_dachportal_identity(cx, s);
        (None, None)
    } else {
        if let Some(m) = &s.members {
            cx.error_at(
                "members-not-dachportal",
                m,
                "spec.members",
                format!("a tenant of kind {} lists no member portals", kind.as_str()),
            )
            .with_hint("only the group's Dachportal (kind: dachportal) links to member portals; remove spec.members");
        }
        match &s.ags {
            Some(ags) => {
                let kreis = check_ags(cx, s, ags, kind);
                (Some(ags.value.clone()), kreis)
            }
            None => {
                cx.error_at(
                    "missing-field",
                    &s.kind,
                    "spec.ags",
                    format!("a tenant of kind {} needs its AGS", kind.as_str()),
                )
                .with_hint(
                    "add the Amtlicher Gemeindeschlüssel, e.g. ags: \"05770008\"; only kind: dachportal has none",
                );
                (None, s.parent.as_ref().map(|p| p.value.clone()))
            }
        }
    };

    // Wave.
    let wave = match (&s.wave, group) {
        (Some(w), Some(g)) => {
            if g.group.wave_index(&w.value).is_none() {
                let known: Vec<&str> = g.group.waves.iter().map(|w| w.name.as_str()).collect();
                cx.error_at(
                    "unknown-wave",
                    w,
                    "spec.wave",
                    format!("wave {:?} is not declared by group {}", w.value, g.group.name),
                )
                .with_hint(format!("the group's waves are: {}", known.join(", ")));
            }
            w.value.clone()
        }
        (Some(w), None) => w.value.clone(),
        (None, Some(g)) => g.group.waves.last().map(|w| w.name.clone()).unwrap_or_default(),
        (None, None) => String::new(),
    };

    // Hostnames.
    let mut hostnames = Vec::new();
    let mut hostnames_unicode = Vec::new();
    if s.hostnames.is_empty() {
        cx.error_file("no-hostname", "spec.hostnames", "a tenant needs at least one hostname")
            .with_hint(format!("e.g. hostnames: [service.{}.de]", slug.value));
    }
    for (i, h) in s.hostnames.iter().enumerate() {
        match names::parse_hostname(&h.value) {
            Ok(parsed) => {
                if let Some(u) = parsed.unicode {
                    hostnames_unicode.push(u);
                }
                hostnames.push(parsed.ascii);
            }
            Err(e) => {
                cx.error_at("invalid-hostname", h, &format!("spec.hostnames[{i}]"), e.to_string()).with_hint(
                    "hostnames follow RFC 1123: labels of a-z, 0-9 and '-', each at most 63 characters, 253 in all",
                );
                hostnames.push(h.value.clone());
            }
        }
    }

    // Theme.
    let base = group.map(|g| g.theme.clone()).unwrap_or_default();
    let theme = resolve_theme(&base, s.theme.as_ref());
    if let Some(ts) = &s.theme {
        check_theme(cx, ts, &theme, "spec.theme");
    }

    // Servicekonto.
    if let Some(sk) = &s.servicekonto {
        check_servicekonto(cx, sk, "spec.servicekonto");
    }
    let group_sk = group.and_then(|g| g.servicekonto.as_ref());
    let servicekonto = merge_servicekonto(group_sk, s.servicekonto.as_ref()).and_then(|m| {
        let Some(provider) = m.provider else {
            cx.error_file(
                "servicekonto-provider",
                "spec.servicekonto.provider",
                "the Servicekonto binding names no provider",
            )
            .with_hint(
                "set provider: bundid (or servicekonto-nrw, bayernid, saml, oidc) here or in the group's defaults",
            );
            return None;
        };
        let protocol = provider.protocol();
        let canonical = hostnames.first().cloned().unwrap_or_default();
        if protocol == Protocol::Oidc {
            if m.issuer.is_none() {
                cx.error_file(
                    "servicekonto-oidc",
                    "spec.servicekonto.issuer",
                    "an OIDC binding needs the provider's issuer URL",
                );
            }
            if m.client_id.is_none() {
                cx.error_file("servicekonto-oidc", "spec.servicekonto.clientId", "an OIDC binding needs a client ID");
            }
            if m.credentials.is_none() {
                cx.error_file(
                    "servicekonto-oidc",
                    "spec.servicekonto.credentials",
                    "an OIDC binding needs a reference to the client secret",
                )
                .with_hint("credentials: { secretKeyRef: { name: <tenant>-servicekonto } }");
            }
        }
        if protocol == Protocol::Oidc && m.allow_legacy_cbc {
            cx.error_file(
                "servicekonto-legacy-cbc",
                "spec.servicekonto.allowLegacyCbc",
                "allowLegacyCbc applies to SAML bindings only (it admits AES-CBC encrypted assertions)",
            )
            .with_hint("remove allowLegacyCbc from this OIDC binding");
        }
        if provider != Provider::Bundid && (m.online_service_id.is_some() || m.requested_attributes.is_some()) {
            cx.error_file(
                "servicekonto-bundid",
                "spec.servicekonto",
                "onlineServiceId and requestedAttributes belong to the BundID profile (provider: bundid)",
            );
        }
        if provider == Provider::Bundid {
            if let Some(url) = &m.idp_metadata_url {
                if let Some(other) = crate::servicekonto::bundid::other_environment_of_url(url, m.environment) {
                    cx.error_file(
                        "servicekonto-environment",
                        "spec.servicekonto.idpMetadataUrl",
                        format!(
                            "idpMetadataUrl {url} belongs to BundID's {} environment, the binding's environment is {}",
                            other.as_str(),
                            m.environment.as_str()
                        ),
                    )
                    .with_hint(format!(
                        "BundID {}: {}; {}: {}",
                        Environment::Integration.as_str(),
                        crate::servicekonto::bundid::idp_entity_id(Environment::Integration),
                        Environment::Production.as_str(),
                        crate::servicekonto::bundid::idp_entity_id(Environment::Production)
                    ));
                }
            }
        }
        Some(Binding {
            provider,
            protocol,
            environment: m.environment,
            trust_level: m.trust_level,
            idp_metadata_url: m.idp_metadata_url,
            issuer: m.issuer,
            entity_id: match protocol {
                Protocol::Saml => Some(
                    m.entity_id
                        .unwrap_or_else(|| crate::servicekonto::metadata::default_entity_id(&canonical, m.environment)),
                ),
                Protocol::Oidc => None,
            },
            client_id: m.client_id,
            credentials: m.credentials,
            allow_legacy_cbc: m.allow_legacy_cbc && protocol == Protocol::Saml,
            online_service_id: m.online_service_id.filter(|_| provider == Provider::Bundid),
            requested_attributes: m.requested_attributes.filter(|_| provider == Provider::Bundid).unwrap_or_default(),
        })
    });

    // Database.
    let schema = match s.database.as_ref() {
        Some(db) => {
            if let Some(pw) = &db.password {
                cx.error_at("inline-secret", pw, "spec.database.password", "database password written into the file")
                    .with_hint(
                        "remove it: `portalctl db provision` generates the role's password and stores it as a Secret",
                    );
            }
            match &db.schema {
                Some(sc) => {
                    if let Err(e) = names::check_schema_name(&sc.value) {
                        cx.error_at("invalid-schema", sc, "spec.database.schema", e.to_string())
                            .with_hint("schema names are lower-case letters, digits and '_', e.g. t_espelkamp");
                    }
                    sc.value.clone()
                }
                None => names::default_schema(&slug.value),
            }
        }
        None => names::default_schema(&slug.value),
    };

    // Go-live.
    let mut target_date = None;
    let mut published = false;
    if let Some(gl) = &s.go_live {
        published = gl.published;
        if let Some(d) = &gl.target_date {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            if time::Date::parse(&d.value, &fmt).is_err() {
                cx.error_at("invalid-date", d, "spec.goLive.targetDate", format!("{:?} is not a date", d.value))
                    .with_hint("write dates as YYYY-MM-DD");
            }
            target_date = Some(d.value.clone());
        }
    }

    let links = s.links.clone().unwrap_or_default();
    if let Some(v) = &links.homepage {
        if !(v.starts_with("https://") || v.starts_with("http://")) {
            cx.error_file("invalid-url", "spec.links.homepage", format!("{v:?} is not an http(s) URL"));
        }
    }

    // Legal pages: inherited from the group, complete before publishing.
    let legal = legal::merge(group.and_then(|g| g.legal.as_ref()), s.legal.as_ref());
    check_legal(cx, &legal, published);

    let own_tasks = check_own_tasks(cx, s.own_tasks.as_ref(), kind, ags.as_deref());

    check_inline_key_material(cx);

    let g = group?;
    Some(Tenant {
        slug: slug.value.clone(),
        group: g.group.name.clone(),
        display_name: s.display_name.value.clone(),
        ags,
        kind,
        kreis,
        // Resolved across files, once every tenant of the group is known.
        members: Vec::new(),
        wave,
        hostnames,
        hostnames_unicode,
        theme,
        servicekonto,
        schema,
        target_date,
        published,
        placement: s.placement.unwrap_or(g.placement),
        namespace: g.group.namespace.clone(),
        cluster_context: g.group.cluster_context.clone(),
        image: g.group.image.clone(),
        content_threshold: s.content_threshold.unwrap_or(g.group.content_threshold),
        own_tasks,
        links,
        legal,
        source: file.path.clone(),
    })
}

/// `spec.ownTasks`: only a kreisangehörige Gemeinde or Stadt performs a Kreis task itself, and each task is one the
/// starter catalogue knows (so that `content import --starter` can honour it).
fn check_own_tasks(
    cx: &mut Ctx,
    own: Option<&S<Vec<S<String>>>>,
    kind: MunicipalityKind,
    ags: Option<&str>,
) -> Vec<String> {
    let Some(own) = own else { return Vec::new() };
    let authority = crate::content::Authority::from_kind(kind, ags);
    if authority != crate::content::Authority::Gemeinde && !own.value.is_empty() {
        cx.error_at(
            "own-task-authority",
            own,
            "spec.ownTasks",
            format!(
                "a {} performs the Kreis tasks anyway; own tasks are for a kreisangehörige Gemeinde or Stadt",
                authority.label()
            ),
        )
        .with_hint("remove spec.ownTasks");
        return Vec::new();
    }
    let known = crate::content::starter_kreis_tasks();
    let mut tasks: Vec<String> = Vec::new();
    for (i, t) in own.value.iter().enumerate() {
        let field = format!("spec.ownTasks[{i}]");
        if !known.contains(&t.value) {
            cx.error_at("unknown-task", t, &field, format!("no Kreis service has the task {:?}", t.value))
                .with_hint(format!("known tasks: {}", known.join(", ")));
        } else if tasks.contains(&t.value) {
            cx.error_at("duplicate-task", t, &field, format!("task {:?} is listed twice", t.value));
        } else {
            tasks.push(t.value.clone());
        }
    }
    tasks
}

/// The legal pages' URLs are https links; a page missing or a placeholder warns on a draft and blocks a published
/// tenant. Findings name the tenant file (an inherited value is the group's, which the hint says).
fn check_legal(cx: &mut Ctx, legal: &LegalSpec, published: bool) {
    for (field, url) in legal::urls(legal) {
        if !legal::is_https_url(url) {
            cx.error_file("invalid-url", &field, format!("{url:?} is not an https:// URL")).with_hint(
                "legal pages and their videos are linked over HTTPS only, e.g. https://www.example.de/impressum",
            );
        }
    }
    if let Some(d) = legal.accessibility.as_ref().and_then(|a| a.date.as_ref()).filter(|d| !is_placeholder(d)) {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(d, &fmt).is_err() {
            cx.error_file("invalid-date", "spec.legal.accessibility.date", format!("{d:?} is not a date"))
                .with_hint("write dates as YYYY-MM-DD");
        }
    }
    for gap in legal::gaps(legal) {
        let (code, what) = match (&gap.field, gap.gap) {
            (None, _) => ("legal-missing", format!("{} missing", gap.page.german())),
            (Some(_), legal::Gap::Missing) => ("legal-missing", "missing".to_string()),
            (Some(_), legal::Gap::Placeholder) => ("legal-placeholder", "placeholder".to_string()),
        };
        let position = Position::file(&cx.file.path);
        let d = if published {
            Diagnostic::error(code, position, format!("{what} blocks publishing"))
        } else {
            Diagnostic::warning(code, position, format!("{what}; needed before publishing"))
        };
        let hint = match gap.field {
            None => format!(
                "add spec.legal.{} (content or url: https://…) here or under spec.defaults.legal in the group \
                 file; see docs/tenant-format.md",
                gap.page.key()
            ),
            Some(_) => format!(
                "replace the {PLACEHOLDER_PREFIX} value or fill in the field, here or under spec.defaults.legal in \
                 the group file"
            ),
        };
        cx.push(d.field(gap.path()).hint(hint));
    }
}

/// Parse every file, in parallel when there are many (parsing is the bulk of the work).
fn parse_all<T: for<'de> serde::Deserialize<'de> + Send>(files: &[&SourceFile]) -> Vec<Result<T, Box<Diagnostic>>> {
    let parse_one = |f: &&SourceFile| serde_saphyr::from_str::<T>(&f.text).map_err(|e| Box::new(parse_error(f, &e)));
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if files.len() < 64 || threads == 1 {
        return files.iter().map(parse_one).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            files.chunks(chunk).map(|c| scope.spawn(move || c.iter().map(parse_one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("parser thread panicked")).collect()
    })
}

pub(super) fn build(files: &[SourceFile]) -> Built {
    let mut diagnostics = Vec::new();
    let (group_files, tenant_files): (Vec<&SourceFile>, Vec<&SourceFile>) =
        files.iter().partition(|f| f.is_group_file());

    // Groups first: tenants inherit from them.
    let mut groups: BTreeMap<String, GroupCtx> = BTreeMap::new();
    for (file, parsed) in group_files.iter().zip(parse_all::<GroupFile>(&group_files)) {
        match parsed {
            Err(d) => diagnostics.push(*d),
            Ok(g) => {
                let mut cx = Ctx::new(file);
                let mut gc = resolve_group(file, &g, &mut cx);
                gc.servicekonto = g.spec.defaults.servicekonto;
                gc.valid = !cx.diags.iter().any(|d| d.severity == Severity::Error);
                if gc.servicekonto.as_ref().is_some_and(|sk| {
                    sk.provider.as_ref().is_some_and(|p| p.value.protocol() == Protocol::Saml)
                        && sk.idp_metadata_url.is_none()
                }) {
                    cx.push(
                        Diagnostic::warning(
                            "idp-unset",
                            Position::file(&file.path),
                            "no IdP metadata URL for the group's SAML Servicekonto",
                        )
                        .field("spec.defaults.servicekonto.idpMetadataUrl")
                        .hint("set it once the IdP operator has confirmed the registration; logins cannot work before"),
                    );
                }
                diagnostics.extend(cx.diags);
                groups.insert(file.group_dir.clone(), gc);
            }
        }
    }
    let group_dirs_with_file: std::collections::BTreeSet<&str> =
        group_files.iter().map(|f| f.group_dir.as_str()).collect();

    let mut tenants = Vec::new();
    let mut missing_group_reported = std::collections::BTreeSet::new();
    for (file, parsed) in tenant_files.iter().zip(parse_all::<TenantFile>(&tenant_files)) {
        let no_group = !group_dirs_with_file.contains(file.group_dir.as_str());
        if no_group && missing_group_reported.insert(file.group_dir.clone()) {
            let n = tenant_files.iter().filter(|f| f.group_dir == file.group_dir).count();
            diagnostics.push(
                Diagnostic::error(
                    "missing-group",
                    Position::file(&file.path),
                    format!(
                        "directory {:?} has {n} tenant file(s) but no group.yaml; they are checked once it exists \
                         (what they inherit from it is unknown until then)",
                        file.group_dir
                    ),
                )
                .hint("create it with `portalctl group new` or move the tenant into an existing group's directory"),
            );
        }
        match parsed {
            Err(d) => diagnostics.push(*d),
            // Without its group, every inherited value would be reported missing: one error, not one per tenant.
            Ok(_) if no_group => {}
            Ok(t) => {
                let mut cx = Ctx::new(file);
                let resolved = resolve_tenant(file, &t, groups.get(&file.group_dir), &mut cx);
                diagnostics.extend(cx.diags);
                if let Some(r) = resolved {
                    tenants.push((r, t));
                }
            }
        }
    }

    // Across all files: slugs, hostnames, AGS and schemas are unique.
    check_unique(&mut diagnostics, &tenants, "duplicate-slug", "slug", Reported::OnLater, |t, _| {
        vec![(t.slug.clone(), "metadata.name".to_string(), None)]
    });
    check_unique(&mut diagnostics, &tenants, "duplicate-hostname", "hostname", Reported::OnBoth, |t, f| {
        t.hostnames
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), format!("spec.hostnames[{i}]"), f.spec.hostnames.get(i).map(|s| s.referenced)))
            .collect()
    });
    check_unique(&mut diagnostics, &tenants, "duplicate-ags", "AGS", Reported::OnLater, |t, f| {
        match (&t.ags, &f.spec.ags) {
            (Some(ags), Some(at)) => vec![(ags.clone(), "spec.ags".to_string(), Some(at.referenced))],
            _ => Vec::new(),
        }
    });
    resolve_dachportals(&mut diagnostics, &mut tenants);
    check_unique(&mut diagnostics, &tenants, "duplicate-schema", "database schema", Reported::OnLater, |t, f| {
        let at = f.spec.database.as_ref().and_then(|d| d.schema.as_ref()).map(|s| s.referenced);
        vec![(t.schema.clone(), "spec.database.schema".to_string(), at)]
    });

    crate::diagnostics::sort(&mut diagnostics);
    let mut catalog = Catalog {
        groups: groups.into_values().map(|g| g.group).collect(),
        tenants: tenants.into_iter().map(|(t, _)| t).collect(),
    };
    catalog.groups.sort_by(|a, b| a.name.cmp(&b.name));
    catalog.tenants.sort_by(|a, b| (&a.group, &a.slug).cmp(&(&b.group, &b.slug)));
    Built { catalog, diagnostics }
}

type Keys = Vec<(String, String, Option<serde_saphyr::Location>)>;

/// Which files a duplicate is reported on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    /// On each later file only, pointing at the first (a slug, AGS or schema: the later file is the second
    /// declaration of the same commune or name).
    OnLater,
    /// On every file involved, each naming the other's file and field. Hostnames: which of two files is the
    /// mistake (the one just edited, often in another group, or the old one) only the operator knows.
    OnBoth,
}

fn check_unique(
    diags: &mut Vec<Diagnostic>,
    tenants: &[(Tenant, TenantFile)],
    code: &'static str,
    what: &str,
    reported: Reported,
    keys: impl Fn(&Tenant, &TenantFile) -> Keys,
) {
    // The first use of each key: tenant, position, field.
    let mut first: BTreeMap<String, (String, Position, String)> = BTreeMap::new();
    for (t, f) in tenants {
        let slug_pos = Position::at(&t.source, f.metadata.name.referenced);
        for (key, field, loc) in keys(t, f) {
            let pos = loc.map(|l| Position::at(&t.source, l)).unwrap_or_else(|| slug_pos.clone());
            match first.get(&key) {
                Some((other, other_pos, other_field)) => {
                    let hint = format!("every tenant needs its own {what}, across all groups");
                    // Reported on both, neither is "already" there: both are told the same.
                    let verb = if reported == Reported::OnBoth { "also" } else { "already" };
                    diags.push(
                        Diagnostic::error(
                            code,
                            pos.clone(),
                            format!(
                                "{what} {key:?} is {verb} used by tenant {other} ({}, {other_field})",
                                other_pos.file
                            ),
                        )
                        .field(field.clone())
                        .tenant(t.slug.clone())
                        .related(other_pos.clone())
                        .hint(hint.clone()),
                    );
                    if reported == Reported::OnBoth {
                        diags.push(
                            Diagnostic::error(
                                code,
                                other_pos.clone(),
                                format!("{what} {key:?} is also used by tenant {} ({}, {field})", t.slug, pos.file),
                            )
                            .field(other_field.clone())
                            .tenant(other.clone())
                            .related(pos)
                            .hint(hint),
                        );
                    }
                }
                None => {
                    first.insert(key, (t.slug.clone(), pos, field));
                }
            }
        }
    }
}

/// Across the files of each group: at most one Dachportal, and its members (given or defaulted) resolved to the
/// public configuration of tenants of the same group.
fn resolve_dachportals(diags: &mut Vec<Diagnostic>, tenants: &mut [(Tenant, TenantFile)]) {
    let mut first_of_group: BTreeMap<String, (String, Position)> = BTreeMap::new();
    for (t, f) in tenants.iter().filter(|(t, _)| t.is_dachportal()) {
        let pos = Position::at(&t.source, f.spec.kind.referenced);
        match first_of_group.get(&t.group) {
            Some((other, other_pos)) => diags.push(
                Diagnostic::error(
                    "duplicate-dachportal",
                    pos,
                    format!("group {} already has a Dachportal: {other}", t.group),
                )
                .field("spec.kind")
                .tenant(t.slug.clone())
                .related(other_pos.clone())
                .hint("a group has at most one regional umbrella portal; make this one a member or move it to its own group"),
            ),
            None => {
                first_of_group.insert(t.group.clone(), (t.slug.clone(), pos));
            }
        }
    }
    // What a Dachportal may show of a tenant, with the tenant's group.
    let public: Vec<(String, MemberPortal)> = tenants
        .iter()
        .map(|(t, _)| {
            let m = MemberPortal {
                slug: t.slug.clone(),
                display_name: t.display_name.clone(),
                hostname: t.hostnames.first().cloned().unwrap_or_default(),
                published: t.published,
            };
            (t.group.clone(), m)
        })
        .collect();
    for (t, f) in tenants.iter_mut().filter(|(t, _)| t.is_dachportal()) {
        let same_group = || public.iter().filter(|(g, m)| *g == t.group && m.slug != t.slug).map(|(_, m)| m);
        let Some(listed) = &f.spec.members else {
            t.members = same_group().cloned().collect();
            continue;
        };
        let mut members: Vec<MemberPortal> = Vec::new();
        for (i, slug) in listed.value.iter().enumerate() {
            let pos = Position::at(&t.source, slug.referenced);
            let field = format!("spec.members[{i}]");
            let found = public.iter().find(|(_, m)| m.slug == slug.value);
            let problem = match found {
                _ if slug.value == t.slug => Some((
                    "member-self",
                    format!("the Dachportal {} lists itself as a member", t.slug),
                    "list the group's local portals only; the Dachportal is the page that links to them".to_string(),
                )),
                None => Some((
                    "unknown-member",
                    format!("member {:?} is not a tenant", slug.value),
                    format!(
                        "members are slugs of tenants of group {}: {}",
                        t.group,
                        same_group().map(|m| m.slug.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some((g, _)) if *g != t.group => Some((
                    "unknown-member",
                    format!("member {:?} belongs to group {g}, not {}", slug.value, t.group),
                    "a Dachportal links only to tenants of its own group".to_string(),
                )),
                Some(_) if members.iter().any(|m| m.slug == slug.value) => Some((
                    "duplicate-member",
                    format!("member {:?} is listed twice", slug.value),
                    "list every member once".to_string(),
                )),
                Some(_) => None,
            };
            match (problem, found) {
                (Some((code, message, hint)), _) => {
                    diags.push(Diagnostic::error(code, pos, message).field(field).tenant(t.slug.clone()).hint(hint))
                }
                (None, Some((_, m))) => members.push(m.clone()),
                (None, None) => unreachable!("a slug that is no tenant is reported above"),
            }
        }
        if listed.value.is_empty() {
            diags.push(
                Diagnostic::error(
                    "no-members",
                    Position::at(&t.source, listed.referenced),
                    "the Dachportal lists no member portals",
                )
                .field("spec.members")
                .tenant(t.slug.clone())
                .hint("name the group's tenants it links to, or remove spec.members to link to all of them"),
            );
        }
        t.members = members;
    }
}

/// Which way to move the colours: away from each other, i.e. the lighter one lighter and the darker one darker.
fn contrast_hint(fg_name: &str, fg: Rgb, bg_name: &str, bg: Rgb) -> String {
    if fg.luminance() > bg.luminance() {
        format!(
            "darken {bg_name} or lighten {fg_name} until the ratio reaches 4.5:1 (the text is the lighter colour here: \
             lightening {bg_name} would lower the contrast)"
        )
    } else {
        format!("darken {fg_name} or lighten {bg_name} until the ratio reaches 4.5:1")
    }
}
