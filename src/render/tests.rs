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
    // The probes ask the operations listener, not the public one.
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "ops");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "ops");
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

#[test]
fn operations_port_is_cluster_internal_and_never_behind_an_ingress() {
    let c = bundled();
    let g = c.group("krz").unwrap();
    let tenants: Vec<_> = c.tenants_of("krz").collect();
    let options = Options { ops_namespaces: vec!["monitoring".into(), "portal-ops".into()], ..Options::default() };
    let state = render(g, &tenants, &options);
    let json = |kind: &str| state.objects.iter().find(|o| o.key().kind == kind).unwrap().to_json();
    let dep = json("Deployment");
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let ops_listen = args.iter().position(|a| *a == "--ops-listen").map(|i| args[i + 1]);
    assert_eq!(ops_listen, Some(format!("0.0.0.0:{OPS_PORT}").as_str()), "{args:?}");
    let ports = container["ports"].as_array().unwrap();
    assert!(ports.iter().any(|p| p["name"] == "ops" && p["containerPort"] == OPS_PORT), "{ports:?}");
    let svc = json("Service");
    let sports = svc["spec"]["ports"].as_array().unwrap();
    assert!(sports.iter().any(|p| p["name"] == "ops" && p["targetPort"] == "ops"), "{sports:?}");
    // The NetworkPolicy: 8080 only from the ingress controller, 9090 only from the ops namespaces.
    let np = json("NetworkPolicy");
    let rules = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let from = |r: &serde_json::Value| -> Vec<String> {
        r["from"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        (rules[0]["ports"][0]["port"].clone(), from(&rules[0])),
        (CONTAINER_PORT.into(), vec!["ingress-nginx".into()])
    );
    assert_eq!(
        (rules[1]["ports"][0]["port"].clone(), from(&rules[1])),
        (OPS_PORT.into(), vec!["monitoring".to_string(), "portal-ops".to_string()])
    );
    // Every Ingress path goes to the public port.
    for o in state.objects.iter().filter(|o| o.key().kind == "Ingress") {
        let ing = o.to_json();
        for rule in ing["spec"]["rules"].as_array().unwrap() {
            for path in rule["http"]["paths"].as_array().unwrap() {
                assert_eq!(path["backend"]["service"]["port"]["name"], "http", "{}", o.key());
            }
        }
        assert_eq!(ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"], "1m");
    }
}

/// The SAML SP keys reach the pods: for every SAML tenant the projected volume maps its Secret
/// `<slug>-saml-<env>` onto exactly the files the server opens under its `--secrets-dir`; a
/// dedicated tenant's keys are mounted only into its own Deployment.
#[test]
fn saml_keys_are_mounted_where_the_server_reads_them() {
    use crate::servicekonto::keys::KeyPaths;
    use crate::tenant::Provider;
    let c = bundled();
    let g = c.group("krz").unwrap();
    let mut tenants: Vec<crate::tenant::Tenant> = c.tenants_of("krz").cloned().collect();
    // One OIDC tenant (no keys) and one dedicated SAML tenant (its own Deployment).
    let oidc = tenants[0].slug.clone();
    let b = tenants[0].servicekonto.as_mut().unwrap();
    b.provider = Provider::Oidc;
    b.protocol = crate::tenant::Protocol::Oidc;
    let dedicated = tenants[1].slug.clone();
    tenants[1].placement = Placement::Dedicated;
    let refs: Vec<&crate::tenant::Tenant> = tenants.iter().collect();
    let state = render(g, &refs, &Options::default());
    let deployment = |name: &str| {
        state.objects.iter().find(|o| o.key().kind == "Deployment" && o.key().name == name).unwrap().to_json()
    };
    // Where a pod's projected volume puts each Secret key, as a path inside the container.
    let mounted = |dep: &serde_json::Value| -> (String, Vec<(String, String, String, bool)>) {
        let pod = &dep["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let secrets_dir = args[args.iter().position(|a| *a == "--secrets-dir").unwrap() + 1].to_string();
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == platform::SECRETS_VOLUME)
            .expect("the keys are mounted");
        assert_eq!(mount["mountPath"], secrets_dir.as_str(), "mounted at the server's --secrets-dir");
        assert_eq!(mount["readOnly"], true);
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == platform::SECRETS_VOLUME).unwrap();
        assert_eq!(volume["projected"]["defaultMode"], 0o440);
        assert_eq!(pod["securityContext"]["fsGroup"], 65532, "the server's group may read the keys");
        let mut files = Vec::new();
        for src in volume["projected"]["sources"].as_array().unwrap() {
            let s = &src["secret"];
            for item in s["items"].as_array().unwrap() {
                files.push((
                    s["name"].as_str().unwrap().to_string(),
                    item["key"].as_str().unwrap().to_string(),
                    format!("{secrets_dir}/{}", item["path"].as_str().unwrap()),
                    s["optional"] == true,
                ));
            }
        }
        (secrets_dir, files)
    };
    let (secrets_dir, shared) = mounted(&deployment(PORTAL));
    let (_, own) = mounted(&deployment(&format!("{PORTAL}-{dedicated}")));
    for t in &tenants {
        let env = t.servicekonto.as_ref().unwrap().environment;
        let paths = KeyPaths::current(std::path::Path::new(&secrets_dir), t, env);
        let expect = vec![
            (saml_secret_name(&t.slug, env), "tls.key".to_string(), paths.key.display().to_string(), true),
            (saml_secret_name(&t.slug, env), "tls.crt".to_string(), paths.cert.display().to_string(), true),
        ];
        let in_shared: Vec<_> = shared.iter().filter(|f| f.0 == expect[0].0).cloned().collect();
        let in_own: Vec<_> = own.iter().filter(|f| f.0 == expect[0].0).cloned().collect();
        if t.slug == oidc {
            assert!(in_shared.is_empty() && in_own.is_empty(), "an OIDC tenant has no SAML keys");
        } else if t.slug == dedicated {
            assert_eq!(in_own, expect, "{}", t.slug);
            assert!(in_shared.is_empty(), "a dedicated tenant's keys stay out of the shared pods");
        } else {
            assert_eq!(in_shared, expect, "{}", t.slug);
            assert!(in_own.is_empty(), "other tenants' keys stay out of a dedicated tenant's pods");
        }
    }
    assert_eq!(own.len(), 2);
    assert_eq!(shared.len(), 2 * (tenants.len() - 2));
    // As the kubelet would project them: the server then finds every key pair it opens.
    let dir = tempfile::tempdir().unwrap();
    for (_, _, path, _) in &shared {
        let local = dir.path().join(path.strip_prefix(&format!("{secrets_dir}/")).unwrap());
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::write(&local, "x").unwrap();
    }
    for t in tenants.iter().filter(|t| t.slug != oidc && t.slug != dedicated) {
        let env = t.servicekonto.as_ref().unwrap().environment;
        assert!(KeyPaths::current(dir.path(), t, env).exist(), "{}", t.slug);
    }
}

#[test]
fn a_group_without_saml_tenants_mounts_no_keys() {
    let c = bundled();
    let g = c.group("krz").unwrap();
    let mut t = c.tenant("espelkamp").unwrap().clone();
    t.servicekonto = None;
    let state = render(g, &[&t], &Options::default());
    let dep = state.objects.iter().find(|o| o.key().kind == "Deployment").unwrap().to_json();
    let volumes = dep["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "only tmp: {volumes:?}");
}
