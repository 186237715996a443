//! Unit tests of the desired state: labels, placement, Secrets and ordering.

use super::*;
use crate::tenant::{load_dir, Placement, SecretRef};

fn bundled() -> crate::tenant::Catalog {
    let built = load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tenants"))).expect("tenants load");
    assert_eq!(built.error_count(), 0);
    built.catalog
}

#[test]
fn every_object_carries_the_group_labels_and_tenant_objects_the_tenant_label() {
    let c = bundled();
    let g = c.group("heinsberg").unwrap();
    let tenants: Vec<_> = c.tenants_of("heinsberg").collect();
    let state = render(g, &tenants, &Options::default());
    for o in &state.objects {
        let labels = o.metadata().labels.as_ref().unwrap();
        assert_eq!(labels["portalctl.dev/group"], "heinsberg", "{}", o.key());
        assert_eq!(labels["app.kubernetes.io/managed-by"], "portalctl");
        assert_eq!(labels["app.kubernetes.io/name"], "serviceportal");
        assert!(labels.contains_key("app.kubernetes.io/component") && labels.contains_key("app.kubernetes.io/version"));
    }
    for t in &tenants {
        let kinds: Vec<&str> = state.of_tenant(&t.slug).map(|o| o.key().kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Ingress"], "tenant {}", t.slug);
    }
    // Namespace first, Ingresses last, names sorted within a kind.
    assert_eq!(state.objects[0].key().kind, "Namespace");
    assert_eq!(state.objects.last().unwrap().key().kind, "Ingress");
    let ingresses: Vec<String> =
        state.objects.iter().filter(|o| o.key().kind == "Ingress").map(|o| o.key().name).collect();
    let mut sorted = ingresses.clone();
    sorted.sort();
    assert_eq!(ingresses, sorted);
}

#[test]
fn dedicated_tenants_get_their_own_deployment_and_the_ingress_points_there() {
    let c = bundled();
    let g = c.group("emscher-lippe").unwrap();
    let mut big = c.tenant("gelsenkirchen").unwrap().clone();
    big.placement = Placement::Dedicated;
    let state = render(g, &[&big], &Options::default());
    let dep = state.objects.iter().find(|o| o.key().kind == "Deployment" && o.key().name == "portal-gelsenkirchen");
    let Some(Object::Deployment(d)) = dep else { panic!("no dedicated Deployment") };
    let sel = d.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap();
    assert_eq!(sel[SERVER_LABEL], "portal-gelsenkirchen");
    assert_eq!(d.metadata.labels.as_ref().unwrap()[TENANT_LABEL], "gelsenkirchen");
    let Some(Object::Ingress(i)) = state.objects.iter().find(|o| o.key().kind == "Ingress") else { panic!() };
    let backend = &i.spec.as_ref().unwrap().rules.as_ref().unwrap()[0].http.as_ref().unwrap().paths[0].backend;
    assert_eq!(backend.service.as_ref().unwrap().name, "portal-gelsenkirchen");
    // The shared Deployment still exists and selects only its own pods.
    let Some(Object::Deployment(shared)) =
        state.objects.iter().find(|o| o.key().name == "portal" && o.key().kind == "Deployment")
    else {
        panic!()
    };
    assert_eq!(shared.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap()[SERVER_LABEL], "portal");
}

#[test]
fn env_and_file_references_become_secrets_without_data() {
    let c = bundled();
    let g = c.group("krz").unwrap();
    let mut t = c.tenant("espelkamp").unwrap().clone();
    t.servicekonto.as_mut().unwrap().credentials =
        Some(SecretRef { env: Some("ESPELKAMP_SK".into()), ..Default::default() });
    let state = render(g, &[&t], &Options::default());
    let secret = state.objects.iter().find(|o| o.key().kind == "Secret").expect("a Secret");
    assert_eq!(secret.key().name, "espelkamp-servicekonto");
    assert_eq!(secret.secret_source(), Some(&SecretSource::Env("ESPELKAMP_SK".into())));
    let json = secret.to_json();
    assert!(json.get("data").is_none() && json.get("stringData").is_none(), "{json}");
    assert_eq!(json["metadata"]["annotations"][SECRET_SOURCE_ANNOTATION], "env:ESPELKAMP_SK");
    assert!(state.to_yaml().contains("resolved from env:ESPELKAMP_SK at apply time"));

    // A secretKeyRef is used as is: no Secret is rendered.
    let t = c.tenant("espelkamp").unwrap();
    let state = render(g, &[t], &Options::default());
    assert!(state.objects.iter().all(|o| o.key().kind != "Secret"));
}

#[test]
fn the_deployment_is_locked_down() {
    let c = bundled();
    let g = c.group("krz").unwrap();
    let state = render(g, &[], &Options::default());
    let json = state.objects.iter().find(|o| o.key().kind == "Deployment").unwrap().to_json();
    let pod = &json["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["image"], g.image.as_str());
    assert_eq!(json["spec"]["replicas"], 2);
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["valueFrom"]["secretKeyRef"]["name"] == DB_SECRET));
    assert!(env.iter().any(|e| e["name"] == "DATABASE_URL"));
}

#[test]
fn rendering_is_deterministic() {
    let c = bundled();
    let g = c.group("krz").unwrap();
    let mut tenants: Vec<_> = c.tenants_of("krz").collect();
    let a = render(g, &tenants, &Options::default()).to_yaml();
    tenants.reverse();
    let b = render(g, &tenants, &Options::default()).to_yaml();
    assert_eq!(a, b);
}
