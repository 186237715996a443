//! Citizens' feedback: the form "Feedback / Barriere melden" linked from every page's footer
//! (the feedback mechanism of the accessibility statement, BITV 2.0 / EU 2018/1523) and "War
//! diese Seite hilfreich?" on every service page (EU Single Digital Gateway, Reg. 2018/1724
//! Art. 25). Plain HTML forms posting to `/rueckmeldung`; no script, no personal data required.
//!
//! A submission is stored in the tenant's own schema (`feedback`, migration 0002), written in a
//! transaction under the tenant's role like every portal query ([`super::db::write`]). Before
//! anything is read or written it must pass, in this order:
//! - **same origin**: the browser must say the form was posted from the tenant's own page
//!   (`Sec-Fetch-Site: same-origin` or a matching `Origin`, the check of the logout form);
//!   otherwise 403;
//! - **rate limits** ([`Limiter`], GCRA from `governor`): per client address and per tenant;
//!   otherwise 429 with `Retry-After`;
//! - **size**: a body of at most [`MAX_BODY`] bytes (413), texts within [`MAX_MESSAGE`],
//!   [`MAX_PAGE`] and [`MAX_EMAIL`] characters (422 with the form and what to fix).
//!
//! The operator reads the feedback with `portalctl feedback list|export` ([`list`]). Feedback
//! text never goes into the server's log.

use super::db::{self, Stmt};
use super::error::AppError;
use super::{AppState, TenantCtx};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::types::Type;

/// The largest request body the feedback form may send, in bytes (more: 413).
pub const MAX_BODY: usize = 32 * 1024;
/// The longest message, in characters.
pub const MAX_MESSAGE: usize = 2000;
/// The longest page reference, in characters.
pub const MAX_PAGE: usize = 300;
/// The longest e-mail address (RFC 5321), in characters.
pub const MAX_EMAIL: usize = 254;

/// Where the form lives and posts to.
pub const PATH: &str = "/rueckmeldung";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(form).post(submit)).route("/rueckmeldung/danke", get(thanks))
}

/// How many submissions are accepted, each per hour; a burst of that many is allowed, then one
/// every hour / limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per client address (IPv6 by its /64 network).
    pub per_client: NonZeroU32,
    /// Per tenant, all clients together.
    pub per_tenant: NonZeroU32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_client: NonZeroU32::new(10).expect("non-zero"),
            per_tenant: NonZeroU32::new(300).expect("non-zero"),
        }
    }
}

/// The rate limits of feedback submissions, in memory (per replica).
pub struct Limiter {
    clients: DefaultKeyedRateLimiter<IpAddr>,
    tenants: DefaultKeyedRateLimiter<String>,
    /// Checks since the last clean-up of keys that are back at a full budget.
    checks: AtomicU64,
}

/// Checks between two clean-ups of the limiters' keys: memory stays bounded by the clients
/// seen within about an hour / the per-client limit.
const CLEANUP_EVERY: u64 = 1024;

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            clients: DefaultKeyedRateLimiter::keyed(Quota::per_hour(limits.per_client)),
            tenants: DefaultKeyedRateLimiter::keyed(Quota::per_hour(limits.per_tenant)),
            checks: AtomicU64::new(0),
        }
    }

    /// Take one submission from the client's and the tenant's budget, or say how long to wait.
    /// A client over its limit does not use up the tenant's budget.
    pub fn check(&self, client: Option<IpAddr>, tenant: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == CLEANUP_EVERY - 1 {
            self.clients.retain_recent();
            self.clients.shrink_to_fit();
            self.tenants.retain_recent();
        }
        if let Some(ip) = client {
            self.clients.check_key(&ip).map_err(|n| n.wait_time_from(self.clients.clock().now()))?;
        }
        self.tenants.check_key(&tenant.to_string()).map_err(|n| n.wait_time_from(self.tenants.clock().now()))
    }
}

/// The client a request comes from, for the per-client limit: the connection's peer; when the
/// peer is a proxy in a private network (the Ingress controller, loopback), the address that
/// proxy appended last to `X-Forwarded-For` (the one a client cannot forge through it). IPv6
/// addresses count by their /64 network, which one host usually holds whole.
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?.ip();
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse::<IpAddr>().ok())
    };
    let ip = if is_private(peer) { forwarded().unwrap_or(peer) } else { peer };
    Some(match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    })
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// What a citizen sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The yes/no question of a service page.
    Helpful,
    /// A barrier on the portal.
    Accessibility,
    /// Any other remark.
    General,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Helpful => "helpful",
            Kind::Accessibility => "accessibility",
            Kind::General => "general",
        }
    }

    /// The form's value for it (`art`).
    fn form_value(self) -> &'static str {
        match self {
            Kind::Helpful => "hilfreich",
            Kind::Accessibility => "barriere",
            Kind::General => "allgemein",
        }
    }
}

/// The form's fields as sent (also what the form shows again after a mistake).
#[derive(Debug, Default, Clone, Serialize)]
struct FormValues {
    art: String,
    leistung: String,
    hilfreich: String,
    seite: String,
    nachricht: String,
    email: String,
}

impl FormValues {
    fn parse(body: &[u8]) -> FormValues {
        let mut v = FormValues::default();
        for (k, val) in url::form_urlencoded::parse(body) {
            let slot = match &*k {
                "art" => &mut v.art,
                "leistung" => &mut v.leistung,
                "hilfreich" => &mut v.hilfreich,
                "seite" => &mut v.seite,
                "nachricht" => &mut v.nachricht,
                "email" => &mut v.email,
                _ => continue,
            };
            if slot.is_empty() {
                *slot = val.into_owned();
            }
        }
        v
    }
}

/// A checked submission, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Submission {
    kind: Kind,
    service_id: Option<String>,
    helpful: Option<bool>,
    page: String,
    message: String,
    email: Option<String>,
}

/// Text without control characters (but line breaks in a message), `\r\n` as `\n`, trimmed.
fn clean(text: &str, multiline: bool) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\t' || (c == '\r' && multiline) { ' ' } else { c })
        .filter(|&c| !c.is_control() || (multiline && c == '\n'))
        .collect::<String>()
        .trim()
        .to_string()
}

/// A plausible e-mail address: one `@`, a local part, a domain with a dot, no spaces.
fn plausible_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        }
        None => false,
    }
}

/// Check the form; the submission or what to fix (in German, for the citizen).
fn check(v: &FormValues) -> Result<Submission, Vec<String>> {
    let mut errors = Vec::new();
    let kind = match v.art.as_str() {
        "hilfreich" => Kind::Helpful,
        "barriere" | "" => Kind::Accessibility,
        "allgemein" => Kind::General,
        _ => {
            errors.push("Bitte wählen Sie, worum es geht.".to_string());
            Kind::General
        }
    };
    let message = clean(&v.nachricht, true);
    if message.chars().count() > MAX_MESSAGE {
        errors.push(format!(
            "Ihre Nachricht ist {} Zeichen lang; bitte kürzen Sie sie auf höchstens {MAX_MESSAGE} Zeichen.",
            message.chars().count()
        ));
    }
    let page = clean(&v.seite, false);
    if page.chars().count() > MAX_PAGE {
        errors.push(format!("Die Angabe der Seite darf höchstens {MAX_PAGE} Zeichen lang sein."));
    }
    let email = clean(&v.email, false);
    let email = (!email.is_empty()).then_some(email);
    let (mut service_id, mut helpful) = (None, None);
    match kind {
        Kind::Helpful => {
            helpful = match v.hilfreich.as_str() {
                "ja" => Some(true),
                "nein" => Some(false),
                _ => {
                    errors.push("Bitte wählen Sie „Ja“ oder „Nein“.".to_string());
                    None
                }
            };
            if crate::names::check_slug(&v.leistung).is_err() || v.leistung.len() > 63 {
                errors.push("Die Rückmeldung nennt keine Leistung dieses Portals.".to_string());
            } else {
                service_id = Some(v.leistung.clone());
            }
            if email.is_some() {
                errors
                    .push("Eine E-Mail-Adresse kann nur bei der Meldung einer Barriere angegeben werden.".to_string());
            }
        }
        Kind::Accessibility | Kind::General => {
            if message.is_empty() {
                errors.push("Bitte schreiben Sie uns Ihre Nachricht.".to_string());
            }
            if let Some(e) = &email {
                if kind != Kind::Accessibility {
                    errors.push(
                        "Eine E-Mail-Adresse kann nur bei der Meldung einer Barriere angegeben werden.".to_string(),
                    );
                } else if e.chars().count() > MAX_EMAIL || !plausible_email(e) {
                    errors.push("Bitte prüfen Sie die E-Mail-Adresse (oder lassen Sie das Feld leer).".to_string());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Submission { kind, service_id, helpful, page, message, email })
}

/// `GET /rueckmeldung`: the form.
async fn form(State(state): State<AppState>, ctx: TenantCtx) -> Result<Response, AppError> {
    let values = FormValues { art: Kind::Accessibility.form_value().into(), ..FormValues::default() };
    form_page(&state, &ctx, StatusCode::OK, &values, &[])
}

fn form_page(
    state: &AppState,
    ctx: &TenantCtx,
    status: StatusCode,
    values: &FormValues,
    errors: &[String],
) -> Result<Response, AppError> {
    let mut c = super::pages::base(ctx);
    c.insert("form", values);
    c.insert("errors", errors);
    c.insert("limits", &serde_json::json!({ "message": MAX_MESSAGE, "page": MAX_PAGE, "email": MAX_EMAIL }));
    let html = state.tera().render("feedback.html", &c)?;
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

/// A themed page saying what happened (thanks, or why nothing was stored).
fn result_page(
    state: &AppState,
    ctx: &TenantCtx,
    status: StatusCode,
    heading: &str,
    text: &str,
    service_id: Option<&str>,
) -> Response {
    let mut c = super::pages::base(ctx);
    c.insert("heading", heading);
    c.insert("text", text);
    c.insert("service_id", &service_id);
    match state.tera().render("feedback_result.html", &c) {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ThanksParams {
    #[serde(default)]
    leistung: Option<String>,
}

/// `GET /rueckmeldung/danke`: the confirmation after a submission (a redirect target, so that
/// reloading it sends nothing again).
async fn thanks(State(state): State<AppState>, ctx: TenantCtx, Query(p): Query<ThanksParams>) -> Response {
    let service = p.leistung.filter(|s| crate::names::check_slug(s).is_ok());
    result_page(
        &state,
        &ctx,
        StatusCode::OK,
        "Vielen Dank für Ihre Rückmeldung",
        "Ihre Rückmeldung ist bei uns angekommen. Sie hilft uns, das Serviceportal zu verbessern.",
        service.as_deref(),
    )
}

const INSERT: &str = "INSERT INTO feedback (kind, service_id, helpful, page, message, email)
     SELECT $1, $2, $3, $4, $5, $6
     WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM service WHERE id = $2 AND published)
     RETURNING id";

/// `POST /rueckmeldung`: check origin, limits and size, store, and redirect to the thanks.
async fn submit(State(state): State<AppState>, ctx: TenantCtx, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    if !matches!(crate::servicekonto::web::logout::same_origin(state.servicekonto(), &parts.headers), Ok(true)) {
        return Ok(result_page(
            &state,
            &ctx,
            StatusCode::FORBIDDEN,
            "Rückmeldung nicht angenommen",
            "Das Formular wurde nicht von dieser Website abgeschickt. Bitte nutzen Sie das Formular auf dieser Seite.",
            None,
        ));
    }
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Err(wait) = state.feedback_limiter().check(client_address(peer, &parts.headers), &ctx.site.slug) {
        let mut res = result_page(
            &state,
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            "Zu viele Rückmeldungen",
            "Von Ihrem Anschluss oder für dieses Portal sind gerade sehr viele Rückmeldungen eingegangen. \
             Bitte versuchen Sie es später noch einmal.",
            None,
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return Ok(res);
    }
    let too_large = || {
        result_page(
            &state,
            &ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Rückmeldung zu lang",
            "Ihre Rückmeldung ist zu lang. Bitte kürzen Sie sie und senden Sie sie erneut.",
            None,
        )
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(too_large());
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else { return Ok(too_large()) };
    let values = FormValues::parse(&bytes);
    let sub = match check(&values) {
        Ok(s) => s,
        Err(errors) => {
            let values = FormValues { nachricht: values.nachricht.chars().take(MAX_MESSAGE).collect(), ..values };
            return form_page(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &values, &errors);
        }
    };
    let kind = sub.kind.as_str();
    let params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)] = &[
        (&kind, Type::TEXT),
        (&sub.service_id, Type::TEXT),
        (&sub.helpful, Type::BOOL),
        (&sub.page, Type::TEXT),
        (&sub.message, Type::TEXT),
        (&sub.email, Type::TEXT),
    ];
    let stored = db::write(state.pool(), &ctx.site.schema, &[Stmt::with(INSERT, params)]).await?;
    if stored.first().is_none_or(Vec::is_empty) {
        // A service this tenant does not publish.
        return Ok(super::pages::not_found(&state, &ctx.site, ctx.user.as_ref()));
    }
    // Who and what was sent stays out of the log; only that something was.
    tracing::info!(tenant = %ctx.site.slug, kind, "feedback received");
    let to = match &sub.service_id {
        Some(id) => format!("/rueckmeldung/danke?leistung={id}"),
        None => "/rueckmeldung/danke".to_string(),
    };
    Ok(Redirect::to(&to).into_response())
}

/// One stored submission, as the operator reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub kind: Kind,
    pub service_id: Option<String>,
    pub helpful: Option<bool>,
    pub page: String,
    pub message: String,
    pub email: Option<String>,
}

/// Every submission to tenant `schema` received at or after `since` (all without), oldest first.
/// Runs as the tenant (`SET LOCAL ROLE`) in a read-only transaction on `client`, which must be
/// a role that may become it (the admin).
pub async fn list(
    client: &mut tokio_postgres::Client,
    schema: &str,
    since: Option<time::OffsetDateTime>,
) -> crate::db::Result<Vec<Entry>> {
    use crate::db::{quote::ident, Error};
    crate::db::check_tenant_schema(schema)?;
    let what = || format!("schema {schema}: reading feedback");
    let since = since
        .map(|t| t.format(&time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|e| Error::Refused(format!("--since: {e}")))?;
    let tx = client.build_transaction().read_only(true).start().await.map_err(Error::query(what()))?;
    tx.batch_execute(&format!("SET LOCAL ROLE {q}; SET LOCAL search_path = {q}", q = ident(schema)))
        .await
        .map_err(Error::query(what()))?;
    let rows = tx
        .query(
            "SELECT id, to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), kind,
                    service_id, helpful, page, message, email
             FROM feedback
             WHERE $1::text IS NULL OR received_at >= $1::text::timestamptz ORDER BY received_at, id",
            &[&since],
        )
        .await
        .map_err(Error::query(what()))?;
    tx.commit().await.map_err(Error::query(what()))?;
    Ok(rows
        .iter()
        .map(|r| Entry {
            id: r.get(0),
            received_at: r.get(1),
            kind: match r.get::<_, &str>(2) {
                "helpful" => Kind::Helpful,
                "accessibility" => Kind::Accessibility,
                _ => Kind::General,
            },
            service_id: r.get(3),
            helpful: r.get(4),
            page: r.get(5),
            message: r.get(6),
            email: r.get(7),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> FormValues {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        FormValues::parse(body.as_bytes())
    }

    #[test]
    fn a_helpful_answer_needs_yes_or_no_and_a_service_and_takes_no_email() {
        let ok =
            check(&values(&[("art", "hilfreich"), ("leistung", "hundeanmeldung"), ("hilfreich", "nein")])).unwrap();
        assert_eq!(
            (ok.kind, ok.helpful, ok.service_id.as_deref()),
            (Kind::Helpful, Some(false), Some("hundeanmeldung"))
        );
        assert!(check(&values(&[("art", "hilfreich"), ("leistung", "hundeanmeldung")])).is_err());
        assert!(check(&values(&[("art", "hilfreich"), ("leistung", "../x"), ("hilfreich", "ja")])).is_err());
        let with_mail = [("art", "hilfreich"), ("leistung", "a"), ("hilfreich", "ja"), ("email", "a@b.de")];
        assert!(check(&values(&with_mail)).is_err());
    }

    #[test]
    fn texts_are_cleaned_and_capped() {
        let long = "ä".repeat(MAX_MESSAGE + 1);
        let errs = check(&values(&[("art", "barriere"), ("nachricht", &long)])).unwrap_err();
        assert!(errs[0].contains("2001 Zeichen"), "{errs:?}");
        let exact = "ä".repeat(MAX_MESSAGE);
        assert!(check(&values(&[("art", "barriere"), ("nachricht", &exact)])).is_ok());
        let s =
            check(&values(&[("art", "allgemein"), ("nachricht", " Zeile 1\r\nZeile\u{0}2\t! "), ("seite", "/a\nb")]))
                .unwrap();
        assert_eq!(s.message, "Zeile 1\nZeile2 !");
        assert_eq!(s.page, "/ab");
        assert!(check(&values(&[("art", "barriere")])).is_err(), "an empty report");
        assert!(check(&values(&[("art", "sonstwas"), ("nachricht", "x")])).is_err());
    }

    #[test]
    fn an_email_address_only_for_accessibility_reports_and_only_plausible_ones() {
        let ok = check(&values(&[("art", "barriere"), ("nachricht", "x"), ("email", " buerger@example.de ")])).unwrap();
        assert_eq!(ok.email.as_deref(), Some("buerger@example.de"));
        assert_eq!(check(&values(&[("art", "barriere"), ("nachricht", "x"), ("email", "")])).unwrap().email, None);
        for bad in ["keine-adresse", "a@b", "a b@c.de", "a@b@c.de", "<a@b.de>"] {
            assert!(check(&values(&[("art", "barriere"), ("nachricht", "x"), ("email", bad)])).is_err(), "{bad}");
        }
        assert!(check(&values(&[("art", "allgemein"), ("nachricht", "x"), ("email", "a@b.de")])).is_err());
    }

    #[test]
    fn the_client_is_the_peer_unless_a_private_proxy_forwarded_the_request() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        let ingress: SocketAddr = "10.244.0.5:41000".parse().unwrap();
        let internet: SocketAddr = "192.0.2.1:41000".parse().unwrap();
        assert_eq!(client_address(Some(ingress), &h), Some("198.51.100.7".parse().unwrap()), "the proxy's entry");
        assert_eq!(client_address(Some(internet), &h), Some("192.0.2.1".parse().unwrap()), "forged header ignored");
        assert_eq!(client_address(Some(ingress), &HeaderMap::new()), Some("10.244.0.5".parse().unwrap()));
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:443".parse().unwrap();
        assert_eq!(client_address(Some(v6), &HeaderMap::new()), Some("2001:db8:1:2::".parse().unwrap()), "/64");
        assert_eq!(client_address(None, &h), None);
    }

    #[test]
    fn the_limiter_counts_clients_and_tenants_apart() {
        let l =
            Limiter::new(Limits { per_client: NonZeroU32::new(2).unwrap(), per_tenant: NonZeroU32::new(3).unwrap() });
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap());
        assert!(l.check(Some(a), "espelkamp").is_ok());
        assert!(l.check(Some(a), "espelkamp").is_ok());
        let wait = l.check(Some(a), "espelkamp").unwrap_err();
        assert!(wait > Duration::from_secs(60) && wait <= Duration::from_secs(1800), "{wait:?}");
        assert!(l.check(Some(b), "espelkamp").is_ok(), "another client");
        assert!(l.check(Some(c), "espelkamp").is_err(), "the tenant's budget is used up");
        assert!(l.check(Some(c), "detmold").is_ok(), "another tenant");
    }
}
