//! Pure: compare the objects of `portalctl render` with what the Helm chart renders from the
//! generated values, object by object, after normalising what legitimately differs (key order,
//! Helm's own labels, the release namespace Helm leaves implicit, JSON formatting in ConfigMaps).

use serde_json::Value;
use std::collections::BTreeMap;

/// Split a multi-document YAML stream into parsed objects, keyed by `Kind/name`.
pub fn parse_stream(yaml: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    let mut doc = String::new();
    let mut docs = Vec::new();
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(std::mem::take(&mut doc));
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.push(doc);
    for d in docs {
        if d.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue;
        }
        let v: Value = serde_saphyr::from_str(&d).map_err(|e| format!("cannot parse a document: {e}\n{d}"))?;
        let key = format!("{}/{}", v["kind"].as_str().unwrap_or("?"), v["metadata"]["name"].as_str().unwrap_or("?"));
        if out.insert(key.clone(), v).is_some() {
            return Err(format!("{key} appears twice"));
        }
    }
    Ok(out)
}

/// Make an object comparable: drop `helm.sh/chart`, read `managed-by: Helm` as portalctl, put
/// namespaced objects into `namespace`, parse `*.json` ConfigMap values.
pub fn normalize(mut v: Value, namespace: &str) -> Value {
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    let meta = &mut v["metadata"];
    if kind != "Namespace" && meta.get("namespace").is_none() {
        meta["namespace"] = Value::String(namespace.to_string());
    }
    let fix_labels = |labels: &mut Value| {
        if let Some(l) = labels.as_object_mut() {
            l.remove("helm.sh/chart");
            if l.get("app.kubernetes.io/managed-by").and_then(Value::as_str) == Some("Helm") {
                l.insert("app.kubernetes.io/managed-by".into(), Value::String("portalctl".into()));
            }
        }
    };
    fix_labels(&mut meta["labels"]);
    if let Some(t) = v.pointer_mut("/spec/template/metadata/labels") {
        fix_labels(t);
    }
    if kind == "ConfigMap" {
        if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
            for (k, val) in data.iter_mut() {
                if k.ends_with(".json") {
                    if let Some(parsed) = val.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()) {
                        *val = parsed;
                    }
                }
            }
        }
    }
    v
}

/// Every difference between the two streams, one message per object; empty when they agree.
pub fn compare(portalctl: &str, helm: &str, namespace: &str) -> Result<Vec<String>, String> {
    let ours = parse_stream(portalctl)?;
    let theirs = parse_stream(helm)?;
    let mut problems = Vec::new();
    for (key, a) in &ours {
        match theirs.get(key) {
            None => problems.push(format!("{key}: rendered by portalctl, missing from the chart")),
            Some(b) => {
                let (a, b) = (normalize(a.clone(), namespace), normalize(b.clone(), namespace));
                if a != b {
                    let ya = crate::cluster::diff::yaml(&a);
                    let yb = crate::cluster::diff::yaml(&b);
                    let d = similar::TextDiff::from_lines(&ya, &yb)
                        .unified_diff()
                        .header("portalctl render", "helm template")
                        .to_string();
                    problems.push(format!("{key} differs:\n{d}"));
                }
            }
        }
    }
    for key in theirs.keys().filter(|k| !ours.contains_key(*k)) {
        problems.push(format!("{key}: rendered by the chart, not by portalctl"));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_helm_labels_and_json_formatting_do_not_count_but_values_do() {
        let ours = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a-tenant\n  namespace: ns\n  labels:\n    app.kubernetes.io/managed-by: portalctl\ndata:\n  tenant.json: '{\"b\": 1, \"a\": 2}'\n";
        let helm = "---\n# Source: x\n---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: Helm\n    helm.sh/chart: serviceportal-0.1.0\n  name: a-tenant\ndata:\n  tenant.json: |-\n    {\"a\": 2,\n     \"b\": 1}\n";
        assert_eq!(compare(ours, helm, "ns").unwrap(), Vec::<String>::new());
        let changed = helm.replace("\"a\": 2", "\"a\": 3");
        let problems = compare(ours, &changed, "ns").unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("ConfigMap/a-tenant differs"), "{problems:?}");
        let extra = format!("{helm}---\nkind: Secret\napiVersion: v1\nmetadata:\n  name: s\n");
        assert_eq!(compare(ours, &extra, "ns").unwrap(), vec!["Secret/s: rendered by the chart, not by portalctl"]);
    }
}
