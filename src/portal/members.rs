//! A Dachportal's member portals as links for its home page, and as the portals its search covers. The links come
//! from the tenant catalogue's public configuration (the member's name and canonical hostname, carried in the
//! Dachportal's own [`Site`]); the search reads each member's published services under the member's own role
//! ([`super::search::with_members`]), never under the Dachportal's.

use super::site::Site;
use serde::Serialize;

/// One member portal as the home page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLink {
    pub display_name: String,
    /// The canonical hostname, shown with the link.
    pub hostname: String,
    /// Where the link goes: `https://<canonical hostname>/`; in local mode `http://<slug>.localhost:<port>/`.
    /// `None` while the member is not online yet (outside local mode).
    pub href: Option<String>,
    /// The member is published ("online").
    pub published: bool,
}

/// The links of `site`'s member portals (empty unless it is a Dachportal). `local_port` is the port of a server in
/// local mode, which serves every tenant on `<slug>.localhost` — there the canonical hostnames do not lead to
/// this server, so the links use the local form, for every member.
pub fn links(site: &Site, local_port: Option<u16>) -> Vec<MemberLink> {
    site.members
        .iter()
        .map(|m| MemberLink {
            display_name: m.display_name.clone(),
            hostname: m.hostname.clone(),
            href: match local_port {
                Some(port) => Some(format!("http://{}.localhost:{port}/", m.slug)),
                None => m.published.then(|| format!("https://{}/", m.hostname)),
            },
            published: m.published,
        })
        .collect()
}

/// The member portals a Dachportal's search covers: those the server serves (found among `sites`, the registry's
/// tenants, in the Dachportal's group) and that have a link (online, or local mode). Each with its schema, whose
/// role reads its published services, and its link as the base of result links.
pub fn search_targets(
    site: &Site,
    sites: &[std::sync::Arc<Site>],
    local_port: Option<u16>,
) -> Vec<super::search::Member> {
    site.members
        .iter()
        .zip(links(site, local_port))
        .filter_map(|(m, link)| {
            let served = sites.iter().find(|s| s.slug == m.slug && s.group == site.group)?;
            Some(super::search::Member {
                schema: served.schema.clone(),
                display_name: m.display_name.clone(),
                base: link.href?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dachportal() -> Site {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        Site::from_tenant(catalog.dachportal_of("emscher-lippe").expect("bundled Dachportal"))
    }

    #[test]
    fn members_link_to_their_canonical_hostname_or_locally_to_their_slug() {
        let mut site = dachportal();
        // The bundled tenants are drafts (their legal pages have placeholders): publish one for the test.
        site.members.iter_mut().find(|m| m.slug == "dorsten").unwrap().published = true;
        let links = links(&site, None);
        assert_eq!(links.len(), 13);
        let dorsten = links.iter().find(|l| l.display_name == "Stadt Dorsten").unwrap();
        assert_eq!(dorsten.href.as_deref(), Some("https://service.dorsten.de/"));
        let local = super::links(&site, Some(8080));
        let dorsten = local.iter().find(|l| l.display_name == "Stadt Dorsten").unwrap();
        assert_eq!(dorsten.href.as_deref(), Some("http://dorsten.localhost:8080/"));
        assert_eq!(dorsten.hostname, "service.dorsten.de");
        // A member that is not online yet is named, not linked (except locally, where everything is served).
        site.members.iter_mut().find(|m| m.slug == "dorsten").unwrap().published = false;
        let dorsten = super::links(&site, None).into_iter().find(|l| l.display_name == "Stadt Dorsten").unwrap();
        assert_eq!((dorsten.href, dorsten.published), (None, false));
        assert!(super::links(&site, Some(1)).iter().all(|l| l.href.is_some()));
    }

    #[test]
    fn search_covers_served_members_that_are_online() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        let mut site = Site::from_tenant(catalog.dachportal_of("emscher-lippe").expect("bundled Dachportal"));
        let dorsten = Site::from_tenant(catalog.tenant("dorsten").unwrap());
        let bottrop = Site::from_tenant(catalog.tenant("bottrop").unwrap());
        let served: Vec<std::sync::Arc<Site>> = vec![dorsten.clone().into(), bottrop.clone().into()];
        // The bundled tenants are drafts (their legal pages have placeholders): publish the two for the test.
        for m in site.members.iter_mut().filter(|m| m.slug == "dorsten" || m.slug == "bottrop") {
            m.published = true;
        }
        let targets = search_targets(&site, &served, None);
        assert_eq!(targets.len(), 2, "only members the server serves: {targets:?}");
        let d = targets.iter().find(|t| t.display_name == "Stadt Dorsten").unwrap();
        assert_eq!((d.schema.as_str(), d.base.as_str()), (dorsten.schema.as_str(), "https://service.dorsten.de/"));
        assert_eq!(
            search_targets(&site, &served, Some(8080)).iter().find(|t| t.schema == dorsten.schema).unwrap().base,
            "http://dorsten.localhost:8080/"
        );
        // A member not online yet has no page to link to: not searched.
        site.members.iter_mut().find(|m| m.slug == "dorsten").unwrap().published = false;
        assert!(search_targets(&site, &served, None).iter().all(|t| t.schema != dorsten.schema));
        // Another group's tenant of the same slug is not a member.
        let mut other = dorsten.clone();
        other.group = "elsewhere".into();
        assert!(search_targets(&site, &[other.into()], Some(1)).is_empty());
    }
}
