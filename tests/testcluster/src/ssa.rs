//! Field ownership and server-side apply, pure (no IO, no clock): field sets, `FieldsV1` encoding, the apply merge
//! with conflict detection, and ownership bookkeeping for ordinary updates.
//!
//! Simplifications compared with the real API server (documented in the README): lists are atomic (a list is one
//! field, owned and compared as a whole; no `k:`/`v:` keys for associative lists), and a manager never conflicts with
//! other entries of its own name.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A path of object keys from the root, e.g. `["metadata", "labels", "app"]`.
pub type FieldPath = Vec<String>;
/// A set of leaf field paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns; they never appear in managed field sets.
const SERVER_METADATA: &[&str] =
    &["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"];

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is ignored when the kind has a status subresource.
    Main { has_status: bool },
    /// The `/status` subresource: only `status` is written.
    Status,
}

impl Scope {
    /// The `subresource` recorded in managedFields.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::Main { .. } => None,
            Scope::Status => Some("status"),
        }
    }
}

/// Apply or Update, as recorded in managedFields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    pub manager: String,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

impl ManagerEntry {
    fn is(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }
}

/// The part of an object that a write in `scope` may change and that ownership is tracked for. `null` values count
/// as not specified.
pub fn managed_view(obj: &Value, scope: Scope) -> Value {
    let mut view = managed_view_with_nulls(obj, scope);
    drop_nulls(&mut view);
    view
}

fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, child| !child.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

fn managed_view_with_nulls(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else { return Value::Object(out) };
    for (k, v) in map {
        match (scope, k.as_str()) {
            (Scope::Status, "status") => {
                out.insert(k.clone(), v.clone());
            }
            (Scope::Status, _) | (Scope::Main { .. }, "apiVersion" | "kind") => {}
            (Scope::Main { has_status: true }, "status") => {}
            (Scope::Main { .. }, "metadata") => {
                let mut meta = Map::new();
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SERVER_METADATA.contains(&mk.as_str()) {
                        meta.insert(mk.clone(), mv.clone());
                    }
                }
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Leaf paths of a value: objects are recursed into (an empty object is a leaf), everything else is a leaf.
pub fn field_set(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, &mut Vec::new(), &mut out);
    out
}

fn collect(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                prefix.push(k.clone());
                collect(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// Encode a field set in the `FieldsV1` format (`{"f:spec":{"f:replicas":{}}}`).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            let entry = node.entry(format!("f:{seg}")).or_insert_with(|| Value::Object(Map::new()));
            node = entry.as_object_mut().expect("FieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// Decode a `FieldsV1` value into a field set. Keys other than `f:` (`k:`, `v:`, `.`) mark their parent as owned.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    decode(v, &mut Vec::new(), &mut out);
    out
}

fn decode(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let Some(map) = v.as_object() else { return };
    if (map.is_empty() || map.keys().any(|k| !k.starts_with("f:"))) && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (k, child) in map {
        if let Some(name) = k.strip_prefix("f:") {
            prefix.push(name.to_string());
            decode(child, prefix, out);
            prefix.pop();
        }
    }
}

/// The value at a path, if present.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| cur.as_object()?.get(seg))
}

/// Remove the value at a path, then remove parent objects left empty unless `keep` says they are owned.
fn remove_path(v: &mut Value, path: &[String], keep: &dyn Fn(&[String]) -> bool) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = &mut *v;
    for seg in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(seg)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
        if map.is_empty() && !parents.is_empty() && !keep(parents) {
            remove_path(v, parents, keep);
        }
    }
}

/// Deep-merge `patch` into `target`: objects merge key by key, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && pv.is_object() => merge(tv, pv),
                    _ => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// JSON merge patch (RFC 7386): objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("just made an object");
    for (k, pv) in p {
        if pv.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), pv);
        }
    }
}

/// Parse the managedFields of a stored object.
pub fn read_managers(obj: &Value) -> Vec<ManagerEntry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|e| {
            Some(ManagerEntry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: if e.get("operation")?.as_str()? == "Apply" { Operation::Apply } else { Operation::Update },
                subresource: e.get("subresource").and_then(Value::as_str).map(str::to_string),
                api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                time: e.get("time").and_then(Value::as_str).unwrap_or_default().to_string(),
                fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Render managedFields entries as JSON.
pub fn write_managers(managers: &[ManagerEntry]) -> Value {
    Value::Array(
        managers
            .iter()
            .map(|m| {
                let mut e = Map::new();
                e.insert("manager".into(), m.manager.clone().into());
                e.insert("operation".into(), m.operation.as_str().into());
                e.insert("apiVersion".into(), m.api_version.clone().into());
                e.insert("time".into(), m.time.clone().into());
                e.insert("fieldsType".into(), "FieldsV1".into());
                e.insert("fieldsV1".into(), to_fields_v1(&m.fields));
                if let Some(sub) = &m.subresource {
                    e.insert("subresource".into(), sub.clone().into());
                }
                Value::Object(e)
            })
            .collect(),
    )
}

/// A field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    /// Dotted path, e.g. `.spec.replicas`.
    pub field: String,
}

/// What one apply request asks for.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub scope: Scope,
    pub force: bool,
    pub api_version: &'a str,
    /// Timestamp written into changed managedFields entries.
    pub now: &'a str,
}

/// The result of a successful apply: the new object (with managedFields) and whether anything changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub object: Value,
    pub changed: bool,
}

/// Server-side apply of `applied` onto `live` (the stored object with its managedFields).
pub fn apply(live: &Value, applied: &Value, req: ApplyRequest<'_>) -> Result<Applied, Vec<Conflict>> {
    let subresource = req.scope.subresource();
    let mut managers = read_managers(live);
    let before = managers.clone();
    let mine = |m: &ManagerEntry| m.is(req.manager, Operation::Apply, subresource);
    let previous: FieldSet = managers.iter().find(|m| mine(m)).map(|m| m.fields.clone()).unwrap_or_default();
    let view = managed_view(applied, req.scope);
    let new_fields = field_set(&view);

    let mut result = live.clone();
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    // Fields this manager applied before and omits now are removed, unless someone else also owns them.
    let owned_by_others = |p: &[String]| managers.iter().any(|m| !mine(m) && m.fields.iter().any(|f| f == p));
    for stale in previous.difference(&new_fields) {
        if !owned_by_others(stale) {
            remove_path(&mut result, stale, &|p| new_fields.iter().any(|f| f.as_slice() == p) || owned_by_others(p));
        }
    }
    merge(&mut result, &view);

    // Fields owned by other managers whose value this apply changes are conflicts.
    let mut conflicts = Vec::new();
    for m in managers.iter_mut().filter(|m| m.manager != req.manager) {
        let changed: Vec<FieldPath> =
            m.fields.iter().filter(|q| get_path(live, q) != get_path(&result, q)).cloned().collect();
        for q in changed {
            if req.force {
                m.fields.remove(&q);
            } else {
                conflicts.push(Conflict { manager: m.manager.clone(), field: format!(".{}", q.join(".")) });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    let mut stripped_live = live.clone();
    if let Some(meta) = stripped_live.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    match managers.iter_mut().find(|m| mine(m)) {
        Some(entry) if entry.fields == new_fields => {}
        Some(entry) => {
            entry.fields = new_fields;
            entry.time = req.now.to_string();
            entry.api_version = req.api_version.to_string();
        }
        None => managers.push(ManagerEntry {
            manager: req.manager.to_string(),
            operation: Operation::Apply,
            subresource: subresource.map(str::to_string),
            api_version: req.api_version.to_string(),
            time: req.now.to_string(),
            fields: new_fields,
        }),
    }
    managers.retain(|m| !m.fields.is_empty());
    let changed = result != stripped_live || managers != before;
    if !changed {
        return Ok(Applied { object: live.clone(), changed: false });
    }
    set_managers(&mut result, &managers);
    Ok(Applied { object: result, changed: true })
}

/// Ownership after an ordinary write (create, replace, merge patch, controller status update) by `manager`: the
/// fields it changed become its own and are taken from everyone else; fields that no longer exist are dropped.
/// Returns `new` with managedFields set.
pub fn record_update(old: &Value, new: &Value, manager: &str, scope: Scope, api_version: &str, now: &str) -> Value {
    let subresource = scope.subresource();
    let mut managers = read_managers(old);
    let new_view = managed_view(new, scope);
    let changed: FieldSet = field_set(&new_view).into_iter().filter(|p| get_path(old, p) != get_path(new, p)).collect();
    for m in managers.iter_mut() {
        m.fields.retain(|p| !changed.contains(p) && get_path(new, p).is_some());
    }
    if !changed.is_empty() {
        match managers.iter_mut().find(|m| m.is(manager, Operation::Update, subresource)) {
            Some(entry) => {
                entry.fields.extend(changed);
                entry.time = now.to_string();
            }
            None => managers.push(ManagerEntry {
                manager: manager.to_string(),
                operation: Operation::Update,
                subresource: subresource.map(str::to_string),
                api_version: api_version.to_string(),
                time: now.to_string(),
                fields: changed,
            }),
        }
    }
    managers.retain(|m| !m.fields.is_empty());
    let mut out = new.clone();
    set_managers(&mut out, &managers);
    out
}

fn set_managers(obj: &mut Value, managers: &[ManagerEntry]) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if managers.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), write_managers(managers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAIN: Scope = Scope::Main { has_status: true };

    fn req(manager: &str) -> ApplyRequest<'_> {
        ApplyRequest { manager, scope: MAIN, force: false, api_version: "apps/v1", now: "2025-01-01T00:00:00Z" }
    }

    fn skeleton() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "portal", "namespace": "ns"}})
    }

    fn fields_of(obj: &Value, manager: &str) -> FieldSet {
        read_managers(obj).into_iter().find(|m| m.manager == manager).map(|m| m.fields).unwrap_or_default()
    }

    fn path(s: &str) -> FieldPath {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn fields_v1_round_trip() {
        let v = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "b": "y"}}, "spec": {"replicas": 2,
            "template": {"spec": {"containers": [{"name": "c"}]}}}, "data": {}});
        let set = field_set(&v);
        assert_eq!(set.len(), 5);
        assert!(set.contains(&path("spec.template.spec.containers")));
        let encoded = to_fields_v1(&set);
        assert_eq!(encoded["f:spec"]["f:replicas"], json!({}));
        assert_eq!(from_fields_v1(&encoded), set);
        // Real servers' associative-list keys mark the parent as owned.
        let real = json!({"f:spec": {"f:ports": {"k:{\"port\":80}": {".": {}, "f:port": {}}}}});
        assert!(from_fields_v1(&real).contains(&path("spec.ports")));
    }

    #[test]
    fn managed_view_ignores_server_fields_and_status() {
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "resourceVersion": "3",
            "labels": {"l": "1"}}, "spec": {"a": 1}, "status": {"s": 1}});
        assert_eq!(managed_view(&obj, MAIN), json!({"metadata": {"labels": {"l": "1"}}, "spec": {"a": 1}}));
        assert_eq!(managed_view(&obj, Scope::Status), json!({"status": {"s": 1}}));
        let with_null = json!({"metadata": {"labels": null, "annotations": {"a": null}}, "spec": {"x": null, "y": 1}});
        assert_eq!(managed_view(&with_null, MAIN), json!({"metadata": {"annotations": {}}, "spec": {"y": 1}}));
        let no_status = Scope::Main { has_status: false };
        assert_eq!(managed_view(&obj, no_status)["status"], json!({"s": 1}));
    }

    #[test]
    fn create_then_noop_then_removal() {
        let mut applied = skeleton();
        applied["metadata"]["labels"] = json!({"a": "1", "b": "2"});
        applied["spec"] = json!({"replicas": 2, "paused": false});
        let first = apply(&skeleton(), &applied, req("portalctl")).unwrap();
        assert!(first.changed);
        assert_eq!(first.object["spec"]["replicas"], 2);
        assert!(fields_of(&first.object, "portalctl").contains(&path("metadata.labels.b")));

        let again =
            apply(&first.object, &applied, ApplyRequest { now: "2026-01-01T00:00:00Z", ..req("portalctl") }).unwrap();
        assert!(!again.changed);
        assert_eq!(again.object, first.object);

        let mut smaller = applied.clone();
        smaller["metadata"]["labels"].as_object_mut().unwrap().remove("b");
        smaller["spec"].as_object_mut().unwrap().remove("paused");
        let third = apply(&first.object, &smaller, req("portalctl")).unwrap();
        assert!(third.changed);
        assert_eq!(third.object["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(third.object["spec"], json!({"replicas": 2}));
        assert!(!fields_of(&third.object, "portalctl").contains(&path("metadata.labels.b")));
    }

    #[test]
    fn removing_last_child_removes_empty_parent() {
        let mut applied = skeleton();
        applied["metadata"]["annotations"] = json!({"x": "1"});
        let first = apply(&skeleton(), &applied, req("m")).unwrap();
        let second = apply(&first.object, &skeleton(), req("m")).unwrap();
        assert!(second.object["metadata"].get("annotations").is_none());
        assert!(second.object["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn conflicts_between_managers_and_force() {
        let mut a = skeleton();
        a["spec"] = json!({"replicas": 2});
        let first = apply(&skeleton(), &a, req("portalctl")).unwrap();

        // Same value: shared ownership, no conflict.
        let shared = apply(&first.object, &a, req("other")).unwrap();
        assert!(fields_of(&shared.object, "other").contains(&path("spec.replicas")));

        let mut b = skeleton();
        b["spec"] = json!({"replicas": 5});
        let err = apply(&first.object, &b, req("other")).unwrap_err();
        assert_eq!(err, vec![Conflict { manager: "portalctl".into(), field: ".spec.replicas".into() }]);

        let forced = apply(&first.object, &b, ApplyRequest { force: true, ..req("other") }).unwrap();
        assert_eq!(forced.object["spec"]["replicas"], 5);
        assert!(fields_of(&forced.object, "portalctl").is_empty());
        assert!(fields_of(&forced.object, "other").contains(&path("spec.replicas")));
    }

    #[test]
    fn shared_field_survives_when_one_owner_drops_it() {
        let mut a = skeleton();
        a["spec"] = json!({"replicas": 2});
        let one = apply(&skeleton(), &a, req("m1")).unwrap();
        let two = apply(&one.object, &a, req("m2")).unwrap();
        let dropped = apply(&two.object, &skeleton(), req("m1")).unwrap();
        assert_eq!(dropped.object["spec"]["replicas"], 2);
        assert!(fields_of(&dropped.object, "m1").is_empty());
    }

    #[test]
    fn status_scope_only_touches_status() {
        let mut a = skeleton();
        a["spec"] = json!({"replicas": 2});
        a["status"] = json!({"ignored": true});
        let first = apply(&skeleton(), &a, req("portalctl")).unwrap();
        assert!(first.object.get("status").is_none());
        let mut s = skeleton();
        s["spec"] = json!({"replicas": 9});
        s["status"] = json!({"readyReplicas": 2});
        let st = apply(&first.object, &s, ApplyRequest { scope: Scope::Status, ..req("ctrl") }).unwrap();
        assert_eq!(st.object["spec"]["replicas"], 2);
        assert_eq!(st.object["status"]["readyReplicas"], 2);
        let entry = read_managers(&st.object).into_iter().find(|m| m.manager == "ctrl").unwrap();
        assert_eq!(entry.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn update_takes_changed_fields_from_appliers() {
        let mut a = skeleton();
        a["spec"] = json!({"replicas": 2, "paused": false});
        let applied = apply(&skeleton(), &a, req("portalctl")).unwrap().object;
        let mut edited = applied.clone();
        edited["spec"]["replicas"] = json!(3);
        let updated = record_update(&applied, &edited, "kubectl-scale", MAIN, "apps/v1", "now");
        assert_eq!(fields_of(&updated, "kubectl-scale"), FieldSet::from([path("spec.replicas")]));
        assert_eq!(fields_of(&updated, "portalctl"), FieldSet::from([path("spec.paused")]));
        // The applier may now set replicas again only with force.
        assert!(apply(&updated, &a, req("portalctl")).is_err());
        assert!(apply(&updated, &a, ApplyRequest { force: true, ..req("portalctl") }).is_ok());
    }

    #[test]
    fn merge_patch_semantics() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }
}
