//! API errors and their rendering as Kubernetes `Status` objects.

use serde_json::{json, Value};

use crate::resources::ResourceType;

/// An API error: HTTP code, machine-readable reason and message, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// `pub type Result<T, E = ApiError>` for store operations.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.to_string()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

fn details(rt: &ResourceType, name: &str) -> Value {
    json!({"name": name, "group": rt.group, "kind": rt.plural})
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: None }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError {
            details: Some(details(rt, name)),
            ..ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(rt)))
        }
    }

    pub fn namespace_not_found(ns: &str) -> ApiError {
        ApiError {
            details: Some(json!({"name": ns, "kind": "namespaces"})),
            ..ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
        }
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError {
            details: Some(details(rt, name)),
            ..ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(rt)))
        }
    }

    pub fn stale(rt: &ResourceType, name: &str) -> ApiError {
        ApiError {
            details: Some(details(rt, name)),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your \
                     changes to the latest version and try again",
                    qualified(rt)
                ),
            )
        }
    }

    /// 409 for server-side apply conflicts; `fields` are `(manager, .dotted.path)` pairs.
    pub fn apply_conflict(rt: &ResourceType, name: &str, fields: &[(String, String)]) -> ApiError {
        let listed: Vec<String> = fields.iter().map(|(m, f)| format!("conflict with \"{m}\": {f}")).collect();
        let causes: Vec<Value> = fields
            .iter()
            .map(|(m, f)| {
                let message = format!("conflict with \"{m}\"");
                json!({"reason": "FieldManagerConflict", "message": message, "field": f})
            })
            .collect();
        let mut d = details(rt, name);
        d["causes"] = Value::Array(causes);
        ApiError {
            details: Some(d),
            ..ApiError::new(
                409,
                "Conflict",
                format!("Apply failed with {} conflict(s): {}", fields.len(), listed.join("; ")),
            )
        }
    }

    /// 422 for a field with an invalid value.
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, detail: &str) -> ApiError {
        let mut d = json!({"name": name, "group": rt.group, "kind": rt.kind});
        let message = format!("Invalid value: \"{name}\": {detail}");
        d["causes"] = json!([{"reason": "FieldValueInvalid", "message": message, "field": field}]);
        ApiError {
            details: Some(d),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{} \"{name}\" is invalid: {field}: Invalid value: \"{name}\": {detail}", rt.kind),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(rt: &ResourceType, name: &str, ns: &str, verb: &str) -> ApiError {
        ApiError {
            details: Some(details(rt, name)),
            ..ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{name}\" is forbidden: User \"testcluster-user\" cannot {verb} resource \"{}\" in API group \
                     \"{}\" in the namespace \"{ns}\"",
                    qualified(rt),
                    rt.plural,
                    rt.group
                ),
            )
        }
    }

    /// The `Status` object sent to the client.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// The `Status` returned by a successful DELETE.
pub fn deleted(rt: &ResourceType, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": uid},
    })
}
