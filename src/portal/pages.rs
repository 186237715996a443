//! The citizen-facing pages: home (Lebenslagen tiles, OZG topics), A–Z list, topic and
//! Lebenslage lists, service page, facilities, staff contacts, search. Only published
//! content is shown; every query runs in the tenant's own transaction.

use super::db::Stmt;
use super::error::{AppError, ErrorPage};
use super::site::{CurrentUser, Site};
use super::{search, AppState, TenantCtx};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_postgres::types::Type;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/leistungen", get(a_to_z))
        .route("/leistungen/{id}", get(service))
        .route("/themen/{id}", get(category))
        .route("/lebenslagen/{id}", get(lebenslage))
        .route("/einrichtungen", get(facilities))
        .route("/ansprechpartner", get(staff))
        .route("/suche", get(search_page))
        .route("/static/portal.css", get(portal_css))
        .route("/static/theme.css", get(theme_css))
}

/// The stylesheets' versions for their URLs (`?v=`): a changed stylesheet gets a new URL, so
/// that it can be cached for long.
#[derive(Serialize)]
struct Assets {
    css: &'static str,
    theme: String,
}

static PORTAL_CSS_VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| super::templates::digest(super::templates::PORTAL_CSS));

fn assets(site: &Site) -> Assets {
    Assets { css: PORTAL_CSS_VERSION.as_str(), theme: super::templates::digest(&site.theme.css()) }
}

fn stylesheet(css: String) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], css)
        .into_response()
}

/// The portal's stylesheet (no inline styles: the Content-Security-Policy allows none).
async fn portal_css() -> Response {
    stylesheet(super::templates::PORTAL_CSS.to_string())
}

/// The tenant's colours and font.
async fn theme_css(ctx: TenantCtx) -> Response {
    stylesheet(ctx.site.theme.css())
}

/// Context every page gets: the tenant, the logo, the logged-in user if any.
pub(super) fn base(ctx: &TenantCtx) -> tera::Context {
    site_context(&ctx.site, ctx.user.as_ref())
}

/// The layout's context: the tenant, its logo and stylesheets, whether citizens can log in, the links of the legal
/// pages, the citizen if any.
fn site_context(site: &Site, user: Option<&CurrentUser>) -> tera::Context {
    let mut c = tera::Context::new();
    c.insert("site", site);
    c.insert("logo", &site.logo());
    c.insert("login", &site.login_available());
    c.insert("user", &user);
    c.insert("assets", &assets(site));
    c.insert("legal_links", &super::legal::links(site));
    c
}

pub(super) fn page(state: &AppState, name: &str, c: &tera::Context) -> Result<Response, AppError> {
    let html = state.tera().render(name, c)?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response())
}

/// The tenant's own "not found" page.
pub fn not_found(state: &AppState, site: &Site, user: Option<&CurrentUser>) -> Response {
    let c = site_context(site, user);
    match state.tera().render("not_found.html", &c) {
        Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// An error page (`res`, carrying its [`ErrorPage`]) shown in the tenant's layout, with the same status and headers;
/// the plain page as it was if the template cannot be rendered.
pub fn themed_error(
    state: &AppState,
    site: &Site,
    user: Option<&CurrentUser>,
    res: Response,
    page: &ErrorPage,
) -> Response {
    let mut c = site_context(site, user);
    c.insert("error", &serde_json::json!({ "title": page.title, "html": page.html }));
    match state.tera().render("error.html", &c) {
        Ok(html) => {
            let (mut parts, _) = res.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
            Response::from_parts(parts, axum::body::Body::from(html))
        }
        Err(_) => res,
    }
}

#[derive(Serialize)]
struct Tile {
    id: String,
    title: String,
    description: String,
    icon: Option<String>,
    /// First letter of the title, shown in the tile's badge.
    initial: String,
    count: i64,
}

fn initial(title: &str) -> String {
    title.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

const HOME_CATEGORIES: &str = "SELECT c.id, c.title, count(s.id) FROM category c
   JOIN service s ON s.category_id = c.id AND s.published
 GROUP BY c.id, c.title, c.position ORDER BY c.position, c.title";
const HOME_LEBENSLAGEN: &str = "SELECT l.id, l.title, l.description, l.icon, count(s.id) FROM lebenslage l
   JOIN service_lebenslage sl ON sl.lebenslage_id = l.id
   JOIN service s ON s.id = sl.service_id AND s.published
 GROUP BY l.id ORDER BY l.position, l.title";

async fn home(State(state): State<AppState>, ctx: TenantCtx, headers: HeaderMap) -> Result<Response, AppError> {
    if ctx.user.is_some() {
        // The layout shows the citizen: never cached.
        let html = render_home(&state, &ctx).await?;
        return Ok(([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response());
    }
    let page = state.home_page(&ctx).await?;
    Ok(page.response(headers.get(header::IF_NONE_MATCH)))
}

/// The home page from the database, rendered.
pub(super) async fn render_home(state: &AppState, ctx: &TenantCtx) -> Result<String, AppError> {
    let mut rows =
        state.read(&ctx.site, &[Stmt::plain(HOME_CATEGORIES), Stmt::plain(HOME_LEBENSLAGEN)]).await?.into_iter();
    let categories: Vec<Tile> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let title: String = r.get(1);
            Tile {
                id: r.get(0),
                initial: initial(&title),
                title,
                description: String::new(),
                icon: None,
                count: r.get(2),
            }
        })
        .collect();
    let lebenslagen: Vec<Tile> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let title: String = r.get(1);
            Tile {
                id: r.get(0),
                initial: initial(&title),
                title,
                description: r.get(2),
                icon: r.get(3),
                count: r.get(4),
            }
        })
        .collect();
    let mut c = base(ctx);
    c.insert("categories", &categories);
    c.insert("lebenslagen", &lebenslagen);
    // A Dachportal's member portals, from public configuration (no query).
    c.insert("members", &super::members::links(&ctx.site, state.registry().local_port()));
    Ok(state.tera().render("home.html", &c)?)
}

#[derive(Serialize)]
struct ListItem {
    id: String,
    title: String,
    summary: String,
}

#[derive(Serialize)]
struct LetterGroup {
    letter: String,
    anchor: String,
    services: Vec<ListItem>,
}

/// Group services by initial letter (umlauts under their base letter, digits under "0–9").
fn by_letter(items: Vec<ListItem>) -> Vec<LetterGroup> {
    let mut groups: BTreeMap<String, Vec<ListItem>> = BTreeMap::new();
    for it in items {
        let first = it.title.chars().next().unwrap_or('#');
        let letter = match first.to_uppercase().next().unwrap_or(first) {
            'Ä' => "A".to_string(),
            'Ö' => "O".to_string(),
            'Ü' => "U".to_string(),
            c if c.is_ascii_digit() => "0–9".to_string(),
            c if c.is_alphabetic() => c.to_string(),
            _ => "#".to_string(),
        };
        groups.entry(letter).or_default().push(it);
    }
    groups
        .into_iter()
        .map(|(letter, mut services)| {
            services.sort_by_key(|s| s.title.to_lowercase());
            let anchor =
                if letter.chars().all(|c| c.is_ascii_alphabetic()) { letter.to_lowercase() } else { "andere".into() };
            LetterGroup { letter, anchor, services }
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    ctx: &TenantCtx,
    heading: String,
    intro: String,
    items: Vec<ListItem>,
) -> Result<Response, AppError> {
    let mut c = base(ctx);
    c.insert("heading", &heading);
    c.insert("intro", &intro);
    c.insert("groups", &by_letter(items));
    page(state, "list.html", &c)
}

fn items(rows: &[tokio_postgres::Row]) -> Vec<ListItem> {
    rows.iter().map(|r| ListItem { id: r.get(0), title: r.get(1), summary: r.get(2) }).collect()
}

async fn a_to_z(State(state): State<AppState>, ctx: TenantCtx) -> Result<Response, AppError> {
    let rows = state
        .read_one(&ctx.site, Stmt::plain("SELECT id, title, summary FROM service WHERE published ORDER BY title"))
        .await?;
    list_page(&state, &ctx, "Leistungen von A bis Z".into(), String::new(), items(&rows)).await
}

async fn category(State(state): State<AppState>, ctx: TenantCtx, Path(id): Path<String>) -> Result<Response, AppError> {
    let params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)] = &[(&id, Type::TEXT)];
    let mut res = state
        .read(
            &ctx.site,
            &[
                Stmt::with("SELECT title FROM category WHERE id = $1", params),
                Stmt::with(
                    "SELECT id, title, summary FROM service WHERE published AND category_id = $1 ORDER BY title",
                    params,
                ),
            ],
        )
        .await?
        .into_iter();
    let (head, rows) = (res.next().unwrap_or_default(), res.next().unwrap_or_default());
    let Some(head) = head.first() else { return Ok(not_found(&state, &ctx.site, ctx.user.as_ref())) };
    list_page(&state, &ctx, head.get(0), String::new(), items(&rows)).await
}

async fn lebenslage(
    State(state): State<AppState>,
    ctx: TenantCtx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)] = &[(&id, Type::TEXT)];
    let mut res = state
        .read(
            &ctx.site,
            &[
                Stmt::with("SELECT title, description FROM lebenslage WHERE id = $1", params),
                Stmt::with(
                    "SELECT s.id, s.title, s.summary FROM service s JOIN service_lebenslage sl ON sl.service_id = s.id
                     WHERE s.published AND sl.lebenslage_id = $1 ORDER BY s.title",
                    params,
                ),
            ],
        )
        .await?
        .into_iter();
    let (head, rows) = (res.next().unwrap_or_default(), res.next().unwrap_or_default());
    let Some(head) = head.first() else { return Ok(not_found(&state, &ctx.site, ctx.user.as_ref())) };
    list_page(&state, &ctx, head.get(0), head.get(1), items(&rows)).await
}

#[derive(Serialize)]
struct ServiceView {
    id: String,
    title: String,
    summary: String,
    description: String,
    category_id: Option<String>,
    category: Option<String>,
    office: String,
    facility_id: Option<String>,
    facility: Option<String>,
    costs: String,
    documents: Vec<String>,
    online_url: Option<String>,
    external_portal: Option<String>,
    trust_level: String,
    trust_label: &'static str,
    origin_tenant: Option<String>,
    /// For a service that needs "hoch": the login with the Online-Ausweis that returns to this
    /// page ([`login_hoch`]); none without an identity provider.
    login_hoch: Option<String>,
}

/// The login a service that needs the trust level "hoch" offers: `/anmelden` asking for that
/// level (the Online-Ausweis), back to the service page afterwards. `None` for other levels, and
/// when the tenant has no identity provider (as for the header's "Anmelden" button).
pub fn login_hoch(site: &Site, service_id: &str, trust_level: &str) -> Option<String> {
    (trust_level == "hoch" && site.login_available()).then(|| {
        let next: String =
            url::form_urlencoded::byte_serialize(format!("/leistungen/{service_id}").as_bytes()).collect();
        format!("/anmelden?trustLevel=hoch&next={next}")
    })
}

/// How a trust level is shown to citizens.
pub fn trust_label(level: &str) -> &'static str {
    match level {
        "hoch" => "hoch (Online-Ausweis)",
        "substantiell" => "substantiell",
        _ => "Basisregistrierung",
    }
}

async fn service(State(state): State<AppState>, ctx: TenantCtx, Path(id): Path<String>) -> Result<Response, AppError> {
    let rows = state
        .read_one(
            &ctx.site,
            Stmt::with(
                "SELECT s.id, s.title, s.summary, s.description, s.category_id, c.title, s.office, s.facility_id,
                        f.name, s.costs, s.documents, s.online_url, s.external_portal, s.trust_level, s.origin_tenant
                 FROM service s
                 LEFT JOIN category c ON c.id = s.category_id
                 LEFT JOIN facility f ON f.id = s.facility_id AND f.published
                 WHERE s.id = $1 AND s.published",
                &[(&id, Type::TEXT)],
            ),
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(not_found(&state, &ctx.site, ctx.user.as_ref())) };
    let trust_level: String = r.get(13);
    let login_hoch = login_hoch(&ctx.site, &id, &trust_level);
    let facility: Option<String> = r.get(8);
    let view = ServiceView {
        id: r.get(0),
        title: r.get(1),
        summary: r.get(2),
        description: r.get(3),
        category_id: r.get(4),
        category: r.get(5),
        office: r.get(6),
        facility_id: facility.as_ref().and(r.get(7)),
        facility,
        costs: r.get(9),
        documents: r.get(10),
        online_url: r.get::<_, Option<String>>(11).filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        external_portal: r.get(12),
        trust_label: trust_label(&trust_level),
        trust_level,
        origin_tenant: r.get(14),
        login_hoch,
    };
    let mut c = base(&ctx);
    c.insert("service", &view);
    page(&state, "service.html", &c)
}

#[derive(Serialize)]
struct FacilityView {
    id: String,
    name: String,
    address: String,
    opening_hours: String,
    phone: Option<String>,
    email: Option<String>,
    url: Option<String>,
}

async fn facilities(State(state): State<AppState>, ctx: TenantCtx) -> Result<Response, AppError> {
    let rows = state
        .read_one(
            &ctx.site,
            Stmt::plain(
                "SELECT id, name, address, opening_hours, phone, email, url FROM facility WHERE published ORDER BY name",
            ),
        )
        .await?;
    let list: Vec<FacilityView> = rows
        .iter()
        .map(|r| FacilityView {
            id: r.get(0),
            name: r.get(1),
            address: r.get(2),
            opening_hours: r.get(3),
            phone: r.get(4),
            email: r.get(5),
            url: r.get::<_, Option<String>>(6).filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        })
        .collect();
    let mut c = base(&ctx);
    c.insert("facilities", &list);
    page(&state, "facilities.html", &c)
}

#[derive(Serialize)]
struct StaffView {
    id: String,
    name: String,
    position_title: String,
    topics: String,
    facility_id: Option<String>,
    facility: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

async fn staff(State(state): State<AppState>, ctx: TenantCtx) -> Result<Response, AppError> {
    let rows = state
        .read_one(
            &ctx.site,
            Stmt::plain(
                "SELECT p.id, p.name, p.position_title, p.topics, f.id, f.name, p.phone, p.email
                 FROM staff p LEFT JOIN facility f ON f.id = p.facility_id AND f.published
                 WHERE p.published ORDER BY p.name",
            ),
        )
        .await?;
    let list: Vec<StaffView> = rows
        .iter()
        .map(|r| StaffView {
            id: r.get(0),
            name: r.get(1),
            position_title: r.get(2),
            topics: r.get(3),
            facility_id: r.get(4),
            facility: r.get(5),
            phone: r.get(6),
            email: r.get(7),
        })
        .collect();
    let mut c = base(&ctx);
    c.insert("staff", &list);
    page(&state, "staff.html", &c)
}

#[derive(Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
}

async fn search_page(
    State(state): State<AppState>,
    ctx: TenantCtx,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    let query = search::clean_query(&params.q);
    let mut results = Vec::new();
    if !query.is_empty() {
        results = search::search(state.pool(), &ctx.site.schema, &query).await?;
        if !ctx.site.members.is_empty() {
            // A Dachportal: its members' published services too, linked to their own portals.
            let registry = state.registry();
            let members = super::members::search_targets(&ctx.site, registry.snapshot().sites(), registry.local_port());
            results = search::with_members(state.pool(), results, &members, &query).await;
        }
    }
    let mut c = base(&ctx);
    c.insert("query", &query);
    c.insert("results", &results);
    page(&state, "search.html", &c)
}
