//! The pure function that turns one SeiNode (as [`crate::view::ObjectView`] keeps it, or
//! the whole object) into a readiness [`Verdict`].
//!
//! ```text
//!   SeiNode JSON (any shape)  --decode_verdict-->  Ok(Some(Verdict))   in scope
//!                                                  Ok(None)            out of scope (no TLS, no condition)
//!                                                  Err(DecodeError)    malformed: logged, counted, skipped
//! ```
//!
//! Only `spec.sidecar.tls` and `status.conditions` are read (see [`crate::view`]); every other
//! field is ignored, so new upstream fields never break the watcher. Conditions are read one
//! by one: a malformed condition of *another* type does not make this object malformed.

use serde::Deserialize;
use serde_json::Value;

use crate::conditions::{is_valid_reason, json_type, truncate, ConditionStatus, REASON_INVALID};
use crate::stats::DecodeErrorKind;

/// The condition type published by sei-k8s-controller for the sidecar's TLS Secret.
pub const CONDITION_TYPE: &str = "SidecarTLSSecretReady";

/// The reason reported when an in-scope SeiNode has no `SidecarTLSSecretReady` condition yet
/// (the controller has not reconciled it, or is not running).
pub const REASON_CONDITION_MISSING: &str = "ConditionMissing";

/// The seed's reading of a status.
impl ConditionStatus {
    /// The value of `seinode_sidecar_tls_secret_ready`: 1 for True, 0 for False, and no
    /// sample at all for Unknown, so that an unreconciled node never pages as broken.
    pub fn ready_value(self) -> Option<u64> {
        match self {
            Self::True => Some(1),
            Self::False => Some(0),
            Self::Unknown => None,
        }
    }
}

/// What the watcher keeps about one in-scope SeiNode: three small fields, not the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<R = String> {
    /// The condition's status (Unknown when the condition is missing).
    pub status: ConditionStatus,
    /// The condition's reason, or [`REASON_CONDITION_MISSING`] / [`REASON_INVALID`].
    pub reason: R,
    /// `lastTransitionTime` as Unix seconds: when the condition entered its current status.
    pub since: Option<i64>,
}

/// Why one object could not be turned into a verdict. The text goes to the log line,
/// never into a metric label; [`DecodeError::kind`] is the bounded label.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("status.conditions is not a list (found {found})")]
    ConditionsNotAList { found: &'static str },
    #[error("spec.sidecar.tls is not an object (found {found})")]
    TlsNotAnObject { found: &'static str },
    #[error("condition {CONDITION_TYPE} has no status")]
    MissingStatus,
    #[error("condition {CONDITION_TYPE} has status {0:?}; want \"True\", \"False\" or \"Unknown\" (case-sensitive)")]
    InvalidStatus(String),
    #[error("condition {CONDITION_TYPE} has lastTransitionTime {0:?}, not an RFC 3339 time")]
    InvalidTransitionTime(String),
    #[error("condition {CONDITION_TYPE} field {field} has the wrong type: {detail}")]
    WrongType { field: &'static str, detail: String },
}

impl DecodeError {
    /// A fixed, bounded label value for the decode-error counter.
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            Self::ConditionsNotAList { .. } => DecodeErrorKind::ConditionsNotAList,
            Self::TlsNotAnObject { .. } => DecodeErrorKind::TlsNotAnObject,
            Self::MissingStatus => DecodeErrorKind::MissingStatus,
            Self::InvalidStatus(_) => DecodeErrorKind::InvalidStatus,
            Self::InvalidTransitionTime(_) => DecodeErrorKind::InvalidTransitionTime,
            Self::WrongType { .. } => DecodeErrorKind::WrongType,
        }
    }
}

/// The one condition the watcher reads; every field optional so that a missing field is
/// reported precisely rather than as a generic serde error.
#[derive(Deserialize)]
struct ConditionView {
    status: Option<String>,
    reason: Option<String>,
    #[serde(rename = "lastTransitionTime")]
    last_transition_time: Option<String>,
}

/// Decodes the readiness verdict of one SeiNode from its JSON (the whole object, or at least
/// its `spec` and `status`). Pure: no I/O, no clock.
///
/// In scope when `spec.sidecar.tls` is set or the condition exists. The first condition of
/// type [`CONDITION_TYPE`] wins, as `meta.FindStatusCondition` does in Go.
pub fn decode_verdict(object: &Value) -> Result<Option<Verdict>, DecodeError> {
    let tls = object.pointer("/spec/sidecar/tls");
    let tls_enabled = match tls {
        None | Some(Value::Null) => false,
        Some(Value::Object(_)) => true,
        Some(other) => {
            return Err(DecodeError::TlsNotAnObject {
                found: json_type(other),
            })
        }
    };
    let condition = match object.pointer("/status/conditions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(conditions)) => conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE)),
        Some(other) => {
            return Err(DecodeError::ConditionsNotAList {
                found: json_type(other),
            })
        }
    };
    let Some(condition) = condition else {
        return Ok(tls_enabled.then(|| Verdict {
            status: ConditionStatus::Unknown,
            reason: REASON_CONDITION_MISSING.to_owned(),
            since: None,
        }));
    };
    let view = ConditionView::deserialize(condition).map_err(|e| DecodeError::WrongType {
        field: wrong_field(condition),
        detail: e.to_string(),
    })?;
    let status = match view.status.as_deref() {
        None => return Err(DecodeError::MissingStatus),
        Some("True") => ConditionStatus::True,
        Some("False") => ConditionStatus::False,
        Some("Unknown") => ConditionStatus::Unknown,
        Some(other) => return Err(DecodeError::InvalidStatus(truncate(other))),
    };
    let since = match view.last_transition_time.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<jiff::Timestamp>()
                .map_err(|_| DecodeError::InvalidTransitionTime(truncate(text)))?
                .as_second(),
        ),
    };
    let reason = match view.reason {
        Some(reason) if is_valid_reason(&reason) => reason,
        // metav1 requires a reason; an empty one is as good as unknown.
        Some(reason) if reason.is_empty() => "Unknown".to_owned(),
        None => "Unknown".to_owned(),
        Some(_) => REASON_INVALID.to_owned(),
    };
    Ok(Some(Verdict {
        status,
        reason,
        since,
    }))
}

/// The first field of the condition whose JSON type is not a string, for the error message.
fn wrong_field(condition: &Value) -> &'static str {
    ["status", "reason", "lastTransitionTime"]
        .into_iter()
        .find(|f| matches!(condition.get(*f), Some(v) if !v.is_string() && !v.is_null()))
        .unwrap_or("condition")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(tls: Value, conditions: Value) -> Value {
        json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {"name": "n", "namespace": "ns"},
            "spec": {"chainId": "pacific-1", "sidecar": {"tls": tls}},
            "status": {"phase": "Running", "conditions": conditions},
        })
    }

    fn cond(status: &str, reason: &str) -> Value {
        json!({"type": CONDITION_TYPE, "status": status, "reason": reason,
               "lastTransitionTime": "2026-11-30T10:00:00Z", "message": "m", "observedGeneration": 3})
    }

    fn verdict(status: ConditionStatus, reason: &str, since: Option<i64>) -> Option<Verdict> {
        Some(Verdict {
            status,
            reason: reason.to_owned(),
            since,
        })
    }

    const T: i64 = 1_796_032_800; // 2026-11-30T10:00:00Z

    #[test]
    fn readiness_mapping_table() {
        use ConditionStatus::*;
        let tls = json!({"secretName": "s"});
        type Case<'a> = (&'a str, Value, Result<Option<Verdict>, DecodeError>);
        let cases: Vec<Case> = vec![
            (
                "true",
                node(tls.clone(), json!([cond("True", "TLSSecretReady")])),
                Ok(verdict(True, "TLSSecretReady", Some(T))),
            ),
            (
                "not found",
                node(tls.clone(), json!([cond("False", "TLSSecretNotFound")])),
                Ok(verdict(False, "TLSSecretNotFound", Some(T))),
            ),
            (
                "unavailable",
                node(tls.clone(), json!([cond("False", "TLSSecretUnavailable")])),
                Ok(verdict(False, "TLSSecretUnavailable", Some(T))),
            ),
            (
                "malformed",
                node(tls.clone(), json!([cond("False", "TLSSecretMalformed")])),
                Ok(verdict(False, "TLSSecretMalformed", Some(T))),
            ),
            (
                "sans",
                node(tls.clone(), json!([cond("False", "TLSSecretSANsMismatch")])),
                Ok(verdict(False, "TLSSecretSANsMismatch", Some(T))),
            ),
            (
                "unknown",
                node(tls.clone(), json!([cond("Unknown", "Reconciling")])),
                Ok(verdict(Unknown, "Reconciling", Some(T))),
            ),
            (
                "missing condition, tls set",
                node(tls.clone(), json!([])),
                Ok(verdict(Unknown, REASON_CONDITION_MISSING, None)),
            ),
            (
                "no status at all, tls set",
                json!({"spec": {"sidecar": {"tls": {"secretName": "s"}}}}),
                Ok(verdict(Unknown, REASON_CONDITION_MISSING, None)),
            ),
            (
                "tls unset, no condition",
                node(Value::Null, json!([{"type": "Ready", "status": "True"}])),
                Ok(None),
            ),
            (
                "no spec at all",
                json!({"metadata": {"name": "x"}}),
                Ok(None),
            ),
            // The controller removes the condition when TLS is unset, but until it does the
            // condition alone keeps the node in scope.
            (
                "tls unset, condition present",
                node(Value::Null, json!([cond("False", "TLSSecretNotFound")])),
                Ok(verdict(False, "TLSSecretNotFound", Some(T))),
            ),
            (
                "conditions not a list",
                node(tls.clone(), json!({"type": CONDITION_TYPE})),
                Err(DecodeError::ConditionsNotAList { found: "an object" }),
            ),
            (
                "tls is a string",
                node(json!("yes"), json!([])),
                Err(DecodeError::TlsNotAnObject { found: "a string" }),
            ),
            (
                "condition without status",
                node(
                    tls.clone(),
                    json!([{"type": CONDITION_TYPE, "reason": "X"}]),
                ),
                Err(DecodeError::MissingStatus),
            ),
            (
                "status odd case",
                node(tls.clone(), json!([cond("true", "TLSSecretReady")])),
                Err(DecodeError::InvalidStatus("true".into())),
            ),
            (
                "status wrong type",
                node(
                    tls.clone(),
                    json!([{"type": CONDITION_TYPE, "status": true}]),
                ),
                Err(DecodeError::WrongType {
                    field: "status",
                    detail: "invalid type: boolean `true`, expected a string".into(),
                }),
            ),
            (
                "bad time",
                node(
                    tls.clone(),
                    json!([{"type": CONDITION_TYPE, "status": "False", "reason": "R", "lastTransitionTime": "yesterday"}]),
                ),
                Err(DecodeError::InvalidTransitionTime("yesterday".into())),
            ),
            (
                "unicode reason",
                node(tls.clone(), json!([cond("False", "Sécrét")])),
                Ok(verdict(False, REASON_INVALID, Some(T))),
            ),
            (
                "no reason",
                node(
                    tls.clone(),
                    json!([{"type": CONDITION_TYPE, "status": "True"}]),
                ),
                Ok(verdict(True, "Unknown", None)),
            ),
            (
                "other malformed condition is ignored",
                node(
                    tls.clone(),
                    json!([{"type": "Ready", "status": 7}, cond("True", "TLSSecretReady")]),
                ),
                Ok(verdict(True, "TLSSecretReady", Some(T))),
            ),
            (
                "duplicate types: first wins",
                node(
                    tls.clone(),
                    json!([
                        cond("False", "TLSSecretNotFound"),
                        cond("True", "TLSSecretReady")
                    ]),
                ),
                Ok(verdict(False, "TLSSecretNotFound", Some(T))),
            ),
        ];
        for (name, object, want) in cases {
            assert_eq!(decode_verdict(&object), want, "case {name:?}");
        }
    }

    #[test]
    fn ready_value_only_for_true_and_false() {
        assert_eq!(ConditionStatus::True.ready_value(), Some(1));
        assert_eq!(ConditionStatus::False.ready_value(), Some(0));
        assert_eq!(ConditionStatus::Unknown.ready_value(), None);
    }

    #[test]
    fn error_text_is_one_short_line() {
        let huge = "x".repeat(10_000) + "\n second line";
        let err = decode_verdict(&node(json!({}), json!([cond(&huge, "R")]))).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 200, "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(err.kind(), DecodeErrorKind::InvalidStatus);
    }

    /// Property tests: `decode_verdict` is total (any JSON in, a verdict or an error out, never
    /// a panic), and agrees with the readiness table on well-formed conditions. The case count
    /// is `PROPTEST_CASES` (default 256 here; docs/testing.md gives the long run).
    mod proptests {
        use super::*;
        use crate::conditions::MAX_REASON_LEN;
        use proptest::prelude::*;
        use serde_json::{json, Map, Value};

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!(f)),
                ".{0,40}".prop_map(Value::String),
                prop_oneof![
                    Just("True"),
                    Just("False"),
                    Just("Unknown"),
                    Just(CONDITION_TYPE),
                    Just("2026-11-30T00:00:00Z")
                ]
                .prop_map(|s| Value::String(s.into())),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                Just("type".to_string()),
                                Just("status".to_string()),
                                Just("reason".to_string()),
                                Just("lastTransitionTime".to_string()),
                                Just("conditions".to_string()),
                                Just("tls".to_string()),
                                Just("sidecar".to_string()),
                                "[a-z]{1,8}"
                            ],
                            inner
                        ),
                        0..6
                    )
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        proptest! {
            #[test]
            fn never_panics_on_any_object(spec in any_json(), status in any_json(), conditions in any_json(), tls in any_json()) {
                let object = json!({"spec": {"sidecar": {"tls": tls}, "x": spec}, "status": {"conditions": conditions, "y": status}});
                if let Ok(Some(v)) = decode_verdict(&object) {
                    // A reason label is always a bounded token.
                    prop_assert!(is_valid_reason(&v.reason) || v.reason == REASON_INVALID);
                    prop_assert!(v.reason.len() <= MAX_REASON_LEN);
                }
                let _ = decode_verdict(&spec);
            }

            /// What the watcher parses off the wire (a projection) decides exactly as the whole
            /// object would, for any shape of spec and status.
            #[test]
            fn the_projected_view_decides_like_the_whole_object(
                spec in any_json(), status in any_json(), conditions in any_json(), tls in any_json(),
                nest in any::<bool>(),
            ) {
                let object = if nest {
                    json!({"metadata": {"name": "n", "namespace": "ns", "managedFields": [spec.clone()]},
                           "spec": {"sidecar": {"tls": tls, "image": "i"}, "x": spec},
                           "status": {"conditions": conditions, "y": status}})
                } else {
                    json!({"metadata": {"name": "n", "namespace": "ns"}, "spec": spec, "status": status})
                };
                let text = serde_json::to_string(&object).unwrap();
                let view: crate::view::ObjectView = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(decode_verdict(&view.data), decode_verdict(&object));
            }

            #[test]
            fn well_formed_conditions_follow_the_table(
                status in prop_oneof![Just("True"), Just("False"), Just("Unknown")],
                reason in "[A-Za-z][A-Za-z0-9_]{0,30}",
                secs in 0i64..4_000_000_000,
                tls in any::<bool>(),
                others in prop::collection::vec("[A-Z][a-z]{1,10}", 0..4),
            ) {
                let time = jiff::Timestamp::from_second(secs).unwrap().to_string();
                let mut conditions: Vec<Value> = others.iter().map(|t| json!({"type": t, "status": "True"})).collect();
                conditions.insert(conditions.len() / 2, json!({"type": CONDITION_TYPE, "status": status, "reason": reason, "lastTransitionTime": time}));
                let object = json!({"spec": {"sidecar": if tls { json!({"tls": {"secretName": "s"}}) } else { json!({}) }},
                                    "status": {"conditions": conditions}});
                let v = decode_verdict(&object).unwrap().unwrap();
                prop_assert_eq!(v.status.as_str(), status);
                prop_assert_eq!(v.reason, reason);
                prop_assert_eq!(v.since, Some(secs));
            }
        }
    }
}
