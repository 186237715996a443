//! The object store and the API verbs on it, pure apart from random UIDs: objects are `serde_json::Value`s keyed by
//! (group, version, resource, namespace, name); every stored change bumps one global `resourceVersion`.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use crate::resources::{self, NameRule, ResourceType};
use crate::selector::Selector;
use crate::ssa::{self, ApplyRequest, Scope};
use crate::status::{self, ApiError, Result};

/// Storage key: (group, version, resource plural, namespace or "" for cluster-scoped, name).
pub type Key = (&'static str, &'static str, &'static str, String, String);

/// Options shared by all writes.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions<'a> {
    /// `fieldManager` (for non-apply writes the server falls back to a default).
    pub manager: &'a str,
    pub dry_run: bool,
    /// RFC 3339 timestamp of this request.
    pub now: &'a str,
}

/// How many change events are kept for watches.
const HISTORY_LIMIT: usize = 100_000;

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    pub resource: &'static ResourceType,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub kind: EventType,
    /// The object after the change (for deletions: as it was, with the deletion's resourceVersion).
    pub object: Value,
}

/// The in-memory object store.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    history: VecDeque<Event>,
    /// resourceVersion of the newest event dropped from `history`.
    compacted: u64,
}

fn key(rt: &'static ResourceType, ns: &str, name: &str) -> Key {
    (rt.group, rt.version, rt.plural, ns.to_string(), name.to_string())
}

/// Check a name against the kind's rule; the error text follows the real API server's.
pub fn validate_name(rule: NameRule, name: &str) -> Result<(), String> {
    let label_ok = |s: &str, first_alpha: bool| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && s.starts_with(|c: char| if first_alpha { c.is_ascii_lowercase() } else { c.is_ascii_alphanumeric() })
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let (ok, text) = match rule {
        NameRule::Subdomain => (
            name.len() <= 253 && name.split('.').all(|l| label_ok(l, false)),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must \
             start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        NameRule::Label => (
            label_ok(name, false),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and \
             end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::Label1035 => (
            label_ok(name, true),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(text.to_string())
    }
}

/// What the real API server's defaulting does for the kinds where clients can see it: Secret `stringData` is
/// merged into `data` (base64) and dropped; a Namespace is `Active`.
fn normalize(rt: &ResourceType, obj: &mut Value) {
    match (rt.group, rt.kind) {
        ("", "Secret") => {
            let Some(map) = obj.as_object_mut() else { return };
            let Some(Value::Object(string_data)) = map.remove("stringData") else { return };
            let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
            if let Some(data) = data.as_object_mut() {
                for (k, v) in string_data {
                    data.insert(k, base64(v.as_str().unwrap_or_default().as_bytes()).into());
                }
            }
        }
        ("", "Namespace") if obj.get("status").is_none() => obj["status"] = json!({"phase": "Active"}),
        _ => {}
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Everything that counts for `metadata.generation`: the object without metadata and status.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn scope_for(rt: &ResourceType, status_subresource: bool) -> Scope {
    if status_subresource {
        Scope::Status
    } else {
        Scope::Main { has_status: rt.status }
    }
}

impl Store {
    /// A store holding the namespaces every cluster has (`default`, `kube-system`, `kube-public`).
    pub fn new(now: &str) -> Store {
        let mut store = Store::default();
        let ns = resources::find("", "v1", "namespaces").expect("namespaces are served");
        for name in ["default", "kube-system", "kube-public"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let opts = WriteOptions { manager: "testcluster", dry_run: false, now };
            store.create(ns, "", body, opts).expect("built-in namespaces are valid");
        }
        store
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.contains_key(&("", "v1", "namespaces", String::new(), ns.to_string()))
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str) -> Result<()> {
        if rt.namespaced && !self.namespace_exists(ns) {
            return Err(ApiError::namespace_not_found(ns));
        }
        Ok(())
    }

    /// GET one object.
    pub fn get(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Result<Value> {
        self.objects.get(&key(rt, ns, name)).cloned().ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// All objects of a kind (in one namespace, or all namespaces when `ns` is `None`).
    pub fn objects(&self, rt: &'static ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, v, p, n, _), _)| {
                *g == rt.group && *v == rt.version && *p == rt.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// Whether an object matches label and field selectors.
    pub fn matches(obj: &Value, labels: &Selector, fields: &[(String, String)]) -> bool {
        let field_ok = fields.iter().all(|(k, want)| match k.as_str() {
            "metadata.name" => obj.pointer("/metadata/name").and_then(Value::as_str) == Some(want),
            "metadata.namespace" => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default() == want
            }
            _ => false,
        });
        field_ok && labels.matches(&labels_of(obj))
    }

    /// LIST: a `<Kind>List` of the matching objects.
    pub fn list(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        labels: &Selector,
        fields: &[(String, String)],
    ) -> Result<Value> {
        let mut items = Vec::new();
        for obj in self.objects(rt, ns) {
            if Self::matches(&obj, labels, fields) {
                items.push(obj);
            }
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        }))
    }

    /// Checks on a request body: apiVersion/kind match the URL, name and namespace match the URL, the name is valid.
    fn check_body(&self, rt: &'static ResourceType, ns: &str, name: &str, body: &Value) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the request body must be a JSON object"));
        }
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
        if api_version != rt.api_version() || kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) and kind ({kind}) do not match the expected {} {}",
                rt.api_version(),
                rt.kind
            )));
        }
        let body_name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(body_ns) = body.pointer("/metadata/namespace").and_then(Value::as_str) {
            if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        validate_name(rt.name_rule, name).map_err(|detail| ApiError::invalid(rt, name, "metadata.name", &detail))?;
        if rt.namespaced {
            self.check_namespace(rt, ns)?;
        }
        Ok(())
    }

    /// Store `new` in place of `old`: server-set metadata, generation and resourceVersion. A write that changes
    /// nothing returns the stored object untouched. Dry runs compute the result without storing it.
    fn commit(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        old: Option<&Value>,
        mut new: Value,
        dry_run: bool,
    ) -> Value {
        normalize(rt, &mut new);
        if let Some(old) = old {
            if *old == new {
                return new;
            }
        }
        let name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let meta = new
            .as_object_mut()
            .expect("objects are maps")
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("metadata is a map");
        if rt.namespaced {
            meta.insert("namespace".into(), ns.into());
        } else {
            meta.remove("namespace");
        }
        let generation = match old {
            None => 1,
            Some(old) => {
                let previous = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                if spec_part(old) != spec_part(&new) {
                    previous + 1
                } else {
                    previous
                }
            }
        };
        let meta = new["metadata"].as_object_mut().expect("metadata is a map");
        meta.insert("generation".into(), generation.into());
        match old {
            Some(old) => {
                for k in ["uid", "creationTimestamp"] {
                    if let Some(v) = old.pointer(&format!("/metadata/{k}")) {
                        meta.insert(k.into(), v.clone());
                    }
                }
            }
            None => {
                meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
                let ts = meta.get("creationTimestamp").filter(|v| v.is_string()).cloned();
                meta.insert("creationTimestamp".into(), ts.unwrap_or_else(|| "1970-01-01T00:00:00Z".into()));
            }
        }
        if dry_run {
            if let Some(rv) = old.and_then(|o| o.pointer("/metadata/resourceVersion")) {
                meta.insert("resourceVersion".into(), rv.clone());
            } else {
                meta.remove("resourceVersion");
            }
            return new;
        }
        self.resource_version += 1;
        meta.insert("resourceVersion".into(), self.resource_version.to_string().into());
        self.objects.insert(key(rt, ns, &name), new.clone());
        let kind = if old.is_some() { EventType::Modified } else { EventType::Added };
        self.record(rt, ns, kind, new.clone());
        new
    }

    fn record(&mut self, rt: &'static ResourceType, ns: &str, kind: EventType, object: Value) {
        if self.history.len() >= HISTORY_LIMIT {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.resource_version;
            }
        }
        self.history.push_back(Event {
            resource_version: self.resource_version,
            resource: rt,
            namespace: ns.to_string(),
            kind,
            object,
        });
    }

    /// Changes after `resource_version`, oldest first; `None` when that version is older than the kept history
    /// (the watch answer is then 410 Expired).
    pub fn events_since(&self, resource_version: u64) -> Option<impl Iterator<Item = &Event>> {
        if resource_version < self.compacted {
            return None;
        }
        let start = self.history.partition_point(|e| e.resource_version <= resource_version);
        Some(self.history.range(start..))
    }

    /// Fill metadata fields a brand-new object gets from the server.
    fn prepare_new(body: &mut Value, now: &str) {
        let meta = body["metadata"].as_object_mut().expect("checked body has metadata");
        for k in ["uid", "resourceVersion", "generation", "managedFields"] {
            meta.remove(k);
        }
        meta.insert("creationTimestamp".into(), now.into());
    }

    /// POST: create (409 AlreadyExists if present). Supports `metadata.generateName`.
    pub fn create(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        mut body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        if body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().is_empty() {
            if let Some(prefix) = body.pointer("/metadata/generateName").and_then(Value::as_str) {
                let suffix: String = uuid::Uuid::new_v4().simple().to_string().chars().take(5).collect();
                body["metadata"]["name"] = format!("{prefix}{suffix}").into();
            }
        }
        let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(rt, &name, "metadata.name", "name or generateName is required"));
        }
        self.check_body(rt, ns, &name, &body)?;
        if self.objects.contains_key(&key(rt, ns, &name)) {
            return Err(ApiError::already_exists(rt, &name));
        }
        Self::prepare_new(&mut body, opts.now);
        let skeleton = json!({"metadata": {}});
        let scope = Scope::Main { has_status: false };
        let body = ssa::record_update(&skeleton, &body, opts.manager, scope, &rt.api_version(), opts.now);
        Ok(self.commit(rt, ns, None, body, opts.dry_run))
    }

    /// PUT, on the object or its status: 409 Conflict when `metadata.resourceVersion` is given and stale.
    pub fn replace(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        status_subresource: bool,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        self.check_body(rt, ns, name, &body)?;
        let old = self.get(rt, ns, name)?;
        let given_rv = body.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
        let stored_rv = old.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
        if !given_rv.is_empty() && given_rv != stored_rv {
            return Err(ApiError::stale(rt, name));
        }
        let mut new = if status_subresource {
            let mut n = old.clone();
            n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            n
        } else {
            let mut n = body;
            if rt.status {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().expect("checked").remove("status");
                    }
                }
            }
            n
        };
        new["metadata"]["resourceVersion"] = stored_rv.into();
        new["metadata"]["managedFields"] = old.pointer("/metadata/managedFields").cloned().unwrap_or(Value::Null);
        if new["metadata"]["managedFields"].is_null() {
            new["metadata"].as_object_mut().expect("metadata").remove("managedFields");
        }
        self.finish_update(rt, ns, &old, new, status_subresource, opts)
    }

    fn finish_update(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        old: &Value,
        mut new: Value,
        status_subresource: bool,
        opts: WriteOptions,
    ) -> Result<Value> {
        for k in ["uid", "creationTimestamp", "generation", "resourceVersion", "name", "namespace"] {
            match old.pointer(&format!("/metadata/{k}")) {
                Some(v) => new["metadata"][k] = v.clone(),
                None => {
                    new["metadata"].as_object_mut().expect("metadata").remove(k);
                }
            }
        }
        if new.get("status").is_some_and(Value::is_null) {
            new.as_object_mut().expect("object").remove("status");
        }
        let scope = scope_for(rt, status_subresource);
        let new = ssa::record_update(old, &new, opts.manager, scope, &rt.api_version(), opts.now);
        Ok(self.commit(rt, ns, Some(old), new, opts.dry_run))
    }

    /// PATCH with a JSON merge patch (also used for strategic merge patches), on the object or its status.
    pub fn merge_patch(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        status_subresource: bool,
        patch: &Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        if rt.namespaced {
            self.check_namespace(rt, ns)?;
        }
        let old = self.get(rt, ns, name)?;
        let mut new = old.clone();
        ssa::merge_patch(&mut new, patch);
        if new.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return Err(ApiError::bad_request("metadata.name cannot be changed by a patch"));
        }
        // A status patch changes only status; a main patch does not change status when it is a subresource.
        if status_subresource {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        } else if rt.status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        }
        if new.pointer("/metadata/resourceVersion") != old.pointer("/metadata/resourceVersion")
            && new.pointer("/metadata/resourceVersion").is_some()
        {
            return Err(ApiError::stale(rt, name));
        }
        validate_name(rt.name_rule, name).map_err(|detail| ApiError::invalid(rt, name, "metadata.name", &detail))?;
        self.finish_update(rt, ns, &old, new, status_subresource, opts)
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply (create-on-apply for the main resource).
    /// Returns the object and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        status_subresource: bool,
        body: &Value,
        force: bool,
        opts: WriteOptions,
    ) -> Result<(Value, bool)> {
        self.check_body(rt, ns, name, body)?;
        let existing = self.objects.get(&key(rt, ns, name)).cloned();
        // A resourceVersion in the applied configuration is a precondition, as on a real server.
        let wanted_rv = body.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
        if !wanted_rv.is_empty() {
            let stored = existing.as_ref().and_then(|o| o.pointer("/metadata/resourceVersion")?.as_str());
            if stored != Some(wanted_rv) {
                return Err(ApiError::stale(rt, name));
            }
        }
        let live = match &existing {
            Some(obj) => obj.clone(),
            None if status_subresource => return Err(ApiError::not_found(rt, name)),
            None => {
                let mut meta = json!({"name": name, "creationTimestamp": opts.now});
                if rt.namespaced {
                    meta["namespace"] = ns.into();
                }
                json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": meta})
            }
        };
        let req = ApplyRequest {
            manager: opts.manager,
            scope: scope_for(rt, status_subresource),
            force,
            api_version: &rt.api_version(),
            now: opts.now,
        };
        let applied = ssa::apply(&live, body, req).map_err(|conflicts| {
            let fields: Vec<(String, String)> = conflicts.into_iter().map(|c| (c.manager, c.field)).collect();
            ApiError::apply_conflict(rt, name, &fields)
        })?;
        let created = existing.is_none();
        if !applied.changed && !created {
            return Ok((live, false));
        }
        Ok((self.commit(rt, ns, existing.as_ref(), applied.object, opts.dry_run), created))
    }

    /// Replace an object's status as a controller would (an Update of the status subresource by `opts.manager`).
    pub fn set_status(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        status: Value,
        opts: WriteOptions,
    ) -> Result<Value> {
        let old = self.get(rt, ns, name)?;
        let mut new = old.clone();
        new["status"] = status;
        self.finish_update(rt, ns, &old, new, true, opts)
    }

    /// DELETE: returns a success `Status`. Deleting a namespace removes everything in it at once.
    pub fn delete(&mut self, rt: &'static ResourceType, ns: &str, name: &str, dry_run: bool) -> Result<Value> {
        let k = key(rt, ns, name);
        let obj = self.objects.get(&k).ok_or_else(|| ApiError::not_found(rt, name))?;
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
        if !dry_run {
            let mut removed = Vec::new();
            if rt.plural == "namespaces" && rt.group.is_empty() {
                let inside: Vec<Key> = self.objects.keys().filter(|(_, _, _, n, _)| n == name).cloned().collect();
                removed.extend(inside);
            }
            removed.push(k);
            self.resource_version += 1;
            for k in removed {
                let Some(mut obj) = self.objects.remove(&k) else { continue };
                obj["metadata"]["resourceVersion"] = self.resource_version.to_string().into();
                let rt = resources::find(k.0, k.1, k.2).expect("stored kinds are served");
                self.record(rt, &k.3, EventType::Deleted, obj);
            }
        }
        Ok(status::deleted(rt, name, &uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn rt(kind: &str) -> &'static ResourceType {
        resources::find_by_kind(kind).unwrap()
    }

    fn opts(manager: &str) -> WriteOptions<'_> {
        WriteOptions { manager, dry_run: false, now: NOW }
    }

    fn cm(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": {"k": "v"}})
    }

    fn store_with_ns() -> Store {
        let mut s = Store::new(NOW);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "krz"}});
        s.create(rt("Namespace"), "", ns, opts("test")).unwrap();
        s
    }

    #[test]
    fn secrets_store_string_data_as_base64_and_namespaces_are_active() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let mut s = store_with_ns();
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "espelkamp-db"},
            "data": {"username": "dA=="}, "stringData": {"password": "hunter2"}});
        let (stored, _) =
            s.apply(rt("Secret"), "krz", "espelkamp-db", false, &secret, false, opts("portalctl")).unwrap();
        assert!(stored.get("stringData").is_none());
        assert_eq!(stored["data"], json!({"username": "dA==", "password": "aHVudGVyMg=="}));
        let rv = s.resource_version();
        s.apply(rt("Secret"), "krz", "espelkamp-db", false, &secret, false, opts("portalctl")).unwrap();
        assert_eq!(s.resource_version(), rv, "re-applying stringData is a no-op");
        assert_eq!(s.get(rt("Namespace"), "", "krz").unwrap()["status"]["phase"], "Active");
    }

    #[test]
    fn apply_with_a_stale_resource_version_conflicts() {
        let mut s = store_with_ns();
        let mut c = cm("a", json!({}));
        s.apply(rt("ConfigMap"), "krz", "a", false, &c, false, opts("m")).unwrap();
        c["metadata"]["resourceVersion"] = json!("1");
        let err = s.apply(rt("ConfigMap"), "krz", "a", false, &c, false, opts("m")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }

    #[test]
    fn names_follow_kind_rules() {
        assert!(validate_name(NameRule::Subdomain, "portal.krz-1").is_ok());
        assert!(validate_name(NameRule::Subdomain, "Bad_Name").is_err());
        assert!(validate_name(NameRule::Subdomain, "-x").is_err());
        assert!(validate_name(NameRule::Label, "a.b").is_err());
        assert!(validate_name(NameRule::Label1035, "1abc").is_err());
        assert!(validate_name(NameRule::Label, &"a".repeat(64)).is_err());
    }

    #[test]
    fn create_get_conflict_and_delete() {
        let mut s = store_with_ns();
        let created = s.create(rt("ConfigMap"), "krz", cm("a", json!({})), opts("test")).unwrap();
        assert_eq!(created["metadata"]["namespace"], "krz");
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(created["metadata"]["uid"].as_str().unwrap().len() > 30);
        let err = s.create(rt("ConfigMap"), "krz", cm("a", json!({})), opts("test")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        let err = s.create(rt("ConfigMap"), "nope", cm("b", json!({})), opts("test")).unwrap_err();
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        let err = s.create(rt("ConfigMap"), "krz", cm("B_ad", json!({})), opts("test")).unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        s.delete(rt("ConfigMap"), "krz", "a", false).unwrap();
        assert_eq!(s.get(rt("ConfigMap"), "krz", "a").unwrap_err().reason, "NotFound");
        assert_eq!(s.delete(rt("ConfigMap"), "krz", "a", false).unwrap_err().code, 404);
    }

    #[test]
    fn replace_checks_resource_version_and_bumps_generation() {
        let mut s = store_with_ns();
        let created = s.create(rt("ConfigMap"), "krz", cm("a", json!({})), opts("test")).unwrap();
        let mut changed = created.clone();
        changed["data"]["k"] = json!("w");
        let replaced = s.replace(rt("ConfigMap"), "krz", "a", false, changed.clone(), opts("test")).unwrap();
        assert_eq!(replaced["metadata"]["generation"], 2);
        assert_ne!(replaced["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
        let err = s.replace(rt("ConfigMap"), "krz", "a", false, changed, opts("test")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }

    #[test]
    fn list_filters_by_namespace_and_labels() {
        let mut s = store_with_ns();
        s.create(rt("ConfigMap"), "krz", cm("a", json!({"t": "x"})), opts("m")).unwrap();
        s.create(rt("ConfigMap"), "krz", cm("b", json!({"t": "y"})), opts("m")).unwrap();
        s.create(rt("ConfigMap"), "default", cm("c", json!({"t": "x"})), opts("m")).unwrap();
        let sel = Selector::parse("t=x").unwrap();
        let list = s.list(rt("ConfigMap"), Some("krz"), &sel, &[]).unwrap();
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["metadata"]["resourceVersion"], s.resource_version().to_string());
        let all = s.list(rt("ConfigMap"), None, &sel, &[]).unwrap();
        assert_eq!(all["items"].as_array().unwrap().len(), 2);
        let by_name = s.list(rt("ConfigMap"), None, &Selector::default(), &[("metadata.name".into(), "b".into())]);
        assert_eq!(by_name.unwrap()["items"][0]["metadata"]["name"], "b");
    }

    #[test]
    fn apply_creates_is_idempotent_and_dry_run_does_not_store() {
        let mut s = store_with_ns();
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "portal"},
            "spec": {"replicas": 2}});
        let dry = WriteOptions { dry_run: true, ..opts("portalctl") };
        let (preview, created) = s.apply(rt("Deployment"), "krz", "portal", false, &dep, false, dry).unwrap();
        assert!(created);
        assert_eq!(preview["spec"]["replicas"], 2);
        assert!(s.get(rt("Deployment"), "krz", "portal").is_err());

        let (first, created) =
            s.apply(rt("Deployment"), "krz", "portal", false, &dep, false, opts("portalctl")).unwrap();
        assert!(created);
        let rv = s.resource_version();
        let (again, created) =
            s.apply(rt("Deployment"), "krz", "portal", false, &dep, false, opts("portalctl")).unwrap();
        assert!(!created);
        assert_eq!(again, first);
        assert_eq!(s.resource_version(), rv);

        let mut scaled = dep.clone();
        scaled["spec"]["replicas"] = json!(3);
        let (third, _) = s.apply(rt("Deployment"), "krz", "portal", false, &scaled, false, opts("portalctl")).unwrap();
        assert_eq!(third["metadata"]["generation"], 2);
        let err = s.apply(rt("Deployment"), "krz", "portal", false, &dep, false, opts("other")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert!(err.message.contains(".spec.replicas"), "{}", err.message);
    }

    #[test]
    fn status_writes_do_not_touch_spec_or_generation() {
        let mut s = store_with_ns();
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"},
            "spec": {"replicas": 1}, "status": {"readyReplicas": 7}});
        let (created, _) = s.apply(rt("Deployment"), "krz", "p", false, &dep, false, opts("portalctl")).unwrap();
        assert!(created.get("status").is_none());
        let patch = json!({"spec": {"replicas": 5}, "status": {"readyReplicas": 1}});
        let patched = s.merge_patch(rt("Deployment"), "krz", "p", true, &patch, opts("ctrl")).unwrap();
        assert_eq!(patched["spec"]["replicas"], 1);
        assert_eq!(patched["status"]["readyReplicas"], 1);
        assert_eq!(patched["metadata"]["generation"], 1);
    }

    #[test]
    fn deleting_a_namespace_removes_its_objects() {
        let mut s = store_with_ns();
        s.create(rt("ConfigMap"), "krz", cm("a", json!({})), opts("m")).unwrap();
        let rv = s.resource_version();
        s.delete(rt("Namespace"), "", "krz", false).unwrap();
        assert!(s.objects(rt("ConfigMap"), None).is_empty());
        let deleted: Vec<(&str, EventType)> = s.events_since(rv).unwrap().map(|e| (e.resource.kind, e.kind)).collect();
        assert_eq!(deleted, [("ConfigMap", EventType::Deleted), ("Namespace", EventType::Deleted)]);
    }

    #[test]
    fn events_record_writes_but_not_noops_or_dry_runs() {
        let mut s = store_with_ns();
        let start = s.resource_version();
        let c = cm("a", json!({}));
        s.apply(rt("ConfigMap"), "krz", "a", false, &c, false, opts("m")).unwrap();
        s.apply(rt("ConfigMap"), "krz", "a", false, &c, false, opts("m")).unwrap();
        let dry = WriteOptions { dry_run: true, ..opts("m") };
        s.apply(rt("ConfigMap"), "krz", "b", false, &c, false, dry).ok();
        let mut changed = c.clone();
        changed["data"]["k"] = json!("w");
        s.apply(rt("ConfigMap"), "krz", "a", false, &changed, false, opts("m")).unwrap();
        let events: Vec<(EventType, u64)> =
            s.events_since(start).unwrap().map(|e| (e.kind, e.resource_version)).collect();
        assert_eq!(events, [(EventType::Added, start + 1), (EventType::Modified, start + 2)]);
        assert_eq!(s.events_since(start + 1).unwrap().count(), 1);
    }
}
