//! A Dachportal's member portals as links for its home page. They come from the tenant catalogue's public
//! configuration (the member's name and canonical hostname, carried in the Dachportal's own [`Site`]), never from a
//! member's database: the Dachportal's queries run under its own role only.

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
}
