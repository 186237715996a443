//! Pure: the readable difference between a live object and what apply would make of it.
//! Server-managed fields are stripped and Secret data is masked, like `kubectl diff`.

use serde_json::Value;

/// Drop what the server manages: managedFields, resourceVersion, uid, creationTimestamp,
/// generation, selfLink and status.
pub fn strip(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in ["managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"] {
                meta.remove(k);
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
                ann.remove("deployment.kubernetes.io/revision");
            }
            if meta.get("annotations").and_then(Value::as_object).is_some_and(|a| a.is_empty()) {
                meta.remove("annotations");
            }
        }
    }
    v
}

/// Replace Secret data values by `***`, marking those that differ as `*** (before)` and
/// `*** (after)`. Leaves other kinds alone.
pub fn mask_secrets(live: Option<&mut Value>, desired: &mut Value) {
    if desired["kind"] != "Secret" {
        return;
    }
    let data = |v: &Value| v.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let before = live.as_deref().map(data).unwrap_or_default();
    let after = data(desired);
    let mask = |target: &mut Value, theirs: &serde_json::Map<String, Value>, tag: &str| {
        if let Some(d) = target.get_mut("data").and_then(Value::as_object_mut) {
            for (k, v) in d.iter_mut() {
                let same = theirs.get(k) == Some(&*v);
                *v = Value::String(if same { "***".into() } else { format!("*** ({tag})") });
            }
        }
    };
    if let Some(l) = live {
        mask(l, &after, "before");
    }
    mask(desired, &before, "after");
}

/// YAML text of a value for diffing.
pub fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot show as YAML: {e}\n"))
}

/// A unified diff of two YAML texts, or `None` when they are equal. `label` names the object.
pub fn unified(label: &str, live: Option<&str>, desired: Option<&str>) -> Option<String> {
    let (a, b) = (live.unwrap_or(""), desired.unwrap_or(""));
    if a == b {
        return None;
    }
    let diff = similar::TextDiff::from_lines(a, b);
    let old = if live.is_some() { format!("live/{label}") } else { "/dev/null".into() };
    let new = if desired.is_some() { format!("desired/{label}") } else { "/dev/null".into() };
    Some(diff.unified_diff().context_radius(3).header(&old, &new).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strip_drops_server_fields_only() {
        let v = json!({"kind": "ConfigMap", "metadata": {"name": "a", "uid": "u", "resourceVersion": "7",
            "managedFields": [], "creationTimestamp": "t", "labels": {"x": "y"}}, "data": {"k": "v"}, "status": {}});
        assert_eq!(
            strip(v),
            json!({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn secret_values_never_appear() {
        let mut live = json!({"kind": "Secret", "data": {"credentials": "b2xk", "same": "eA=="}});
        let mut desired = json!({"kind": "Secret", "data": {"credentials": "bmV3", "same": "eA=="}});
        mask_secrets(Some(&mut live), &mut desired);
        let text = unified("Secret x", Some(&yaml(&live)), Some(&yaml(&desired))).unwrap();
        assert!(!text.contains("b2xk") && !text.contains("bmV3") && !text.contains("eA=="), "{text}");
        assert!(text.contains("*** (before)") && text.contains("*** (after)"), "{text}");
    }

    #[test]
    fn equal_objects_have_no_diff_and_changes_show() {
        let a = yaml(&json!({"data": {"k": "v"}}));
        let b = yaml(&json!({"data": {"k": "w"}}));
        assert_eq!(unified("x", Some(&a), Some(&a)), None);
        let d = unified("ConfigMap ns/x", Some(&a), Some(&b)).unwrap();
        assert!(d.contains("-  k: v") && d.contains("+  k: w"), "{d}");
        assert!(d.contains("--- live/ConfigMap ns/x"), "{d}");
    }
}
