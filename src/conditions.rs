//! The pure function that reads every `status.conditions[]` entry of one object (any kind),
//! in the `metav1.Condition` shape.
//!
//! ```text
//!   object JSON (any shape) --decode_conditions--> Ok(Decoded { conditions, skipped })
//!                                                  Err(ObjectError)   status.conditions is not a list:
//!                                                                     logged, counted, last state kept
//! ```
//!
//! Conditions are read one by one: a malformed entry is skipped (and reported in `skipped`)
//! while the object's other conditions are still exported. The first entry of a type wins,
//! as `meta.FindStatusCondition` does in Go. Messages are never read: they are free text and
//! must not become labels.

use serde::Deserialize;
use serde_json::Value;

use crate::seinode::{is_valid_reason, json_type, truncate, ConditionStatus, REASON_INVALID};
use crate::stats::DecodeErrorKind;

/// The reason exported when a condition has none (metav1 requires one; an empty reason is
/// as good as none).
pub const REASON_MISSING: &str = "Unknown";

/// The longest condition type kept: metav1 allows 316 characters (a qualified name).
pub const MAX_TYPE_LEN: usize = 316;

/// Conditions kept per object. Real objects have about ten; a controller bug that appends a
/// condition per reconcile must not turn into unbounded series.
pub const MAX_CONDITIONS: usize = 64;

/// One condition as the watcher keeps it. `S` is `String` when decoded and an interned
/// `Arc<str>` in the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition<S = String> {
    pub type_: S,
    pub status: ConditionStatus,
    /// The reason, or [`REASON_MISSING`] / [`REASON_INVALID`].
    pub reason: S,
    /// `lastTransitionTime` as Unix seconds.
    pub since: Option<i64>,
    /// `observedGeneration`, when the controller set it (0 counts as unset).
    pub observed_generation: Option<i64>,
}

/// The readable conditions of one object and what was wrong with the others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    pub conditions: Vec<Condition>,
    pub skipped: Vec<ConditionError>,
}

/// The whole `status.conditions` could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("status.conditions is not a list (found {found})")]
pub struct ObjectError {
    pub found: &'static str,
}

impl ObjectError {
    pub fn kind(&self) -> DecodeErrorKind {
        DecodeErrorKind::ConditionsNotAList
    }
}

/// Why one condition entry was skipped. The text goes to the log; [`Self::kind`] is the
/// bounded label of the decode-error counter.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConditionError {
    #[error("a condition entry is not an object (found {0})")]
    NotAnObject(&'static str),
    #[error("a condition has no type, or its type {0:?} is not a condition type name")]
    InvalidType(String),
    #[error("condition {0} has no status")]
    MissingStatus(String),
    #[error(
        "condition {0} has status {1:?}; want \"True\", \"False\" or \"Unknown\" (case-sensitive)"
    )]
    InvalidStatus(String, String),
    #[error("condition {0} has lastTransitionTime {1:?}, not an RFC 3339 time")]
    InvalidTransitionTime(String, String),
    #[error("condition {0} has a field of the wrong type: {1}")]
    WrongType(String, String),
    #[error("more than {MAX_CONDITIONS} conditions; the rest are not exported")]
    TooMany,
}

impl ConditionError {
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            Self::NotAnObject(_) | Self::WrongType(..) => DecodeErrorKind::WrongType,
            Self::InvalidType(_) => DecodeErrorKind::InvalidType,
            Self::MissingStatus(_) => DecodeErrorKind::MissingStatus,
            Self::InvalidStatus(..) => DecodeErrorKind::InvalidStatus,
            Self::InvalidTransitionTime(..) => DecodeErrorKind::InvalidTransitionTime,
            Self::TooMany => DecodeErrorKind::TooManyConditions,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionView {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    last_transition_time: Option<String>,
    observed_generation: Option<i64>,
}

/// Reads every condition of one object. Pure: no I/O, no clock.
pub fn decode_conditions(object: &Value) -> Result<Decoded, ObjectError> {
    let entries = match object.pointer("/status/conditions") {
        None | Some(Value::Null) => return Ok(Decoded::default()),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(ObjectError {
                found: json_type(other),
            })
        }
    };
    let mut decoded = Decoded::default();
    for entry in entries {
        match decode_one(entry) {
            Ok(c) if decoded.conditions.iter().any(|d| d.type_ == c.type_) => {}
            Ok(_) if decoded.conditions.len() == MAX_CONDITIONS => {
                decoded.skipped.push(ConditionError::TooMany);
                break;
            }
            Ok(c) => decoded.conditions.push(c),
            Err(e) => decoded.skipped.push(e),
        }
    }
    Ok(decoded)
}

fn decode_one(entry: &Value) -> Result<Condition, ConditionError> {
    if !entry.is_object() {
        return Err(ConditionError::NotAnObject(json_type(entry)));
    }
    let type_hint = entry
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| is_valid_type(t))
        .unwrap_or("?")
        .to_owned();
    let view = ConditionView::deserialize(entry)
        .map_err(|e| ConditionError::WrongType(type_hint.clone(), truncate(&e.to_string())))?;
    let type_ = match view.type_ {
        Some(t) if is_valid_type(&t) => t,
        other => {
            return Err(ConditionError::InvalidType(truncate(
                &other.unwrap_or_default(),
            )))
        }
    };
    let status = match view.status.as_deref() {
        None => return Err(ConditionError::MissingStatus(type_)),
        Some("True") => ConditionStatus::True,
        Some("False") => ConditionStatus::False,
        Some("Unknown") => ConditionStatus::Unknown,
        Some(other) => return Err(ConditionError::InvalidStatus(type_, truncate(other))),
    };
    let since = match view.last_transition_time.as_deref() {
        None | Some("") => None,
        Some(text) => match text.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_second()),
            Err(_) => return Err(ConditionError::InvalidTransitionTime(type_, truncate(text))),
        },
    };
    let reason = match view.reason {
        Some(reason) if is_valid_reason(&reason) => reason,
        Some(reason) if reason.is_empty() => REASON_MISSING.to_owned(),
        None => REASON_MISSING.to_owned(),
        Some(_) => REASON_INVALID.to_owned(),
    };
    Ok(Condition {
        type_,
        status,
        reason,
        since,
        observed_generation: view.observed_generation.filter(|g| *g > 0),
    })
}

/// Whether `text` can be a condition type and a label value: metav1's qualified name
/// (`[prefix/]Name`), checked loosely: letters, digits, `-`, `_`, `.`, `/`; starting and
/// ending with a letter or digit.
pub fn is_valid_type(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= MAX_TYPE_LEN
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// What a condition's type says about its healthy state, by upstream's naming convention
/// (sei-k8s-controller's contributor guide, "Conditions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// `Ready`, `<Subject>Ready`: True is healthy.
    Ready,
    /// `<Subject>InProgress`: True is the exception.
    InProgress,
    /// `Failed`: True is bad.
    Failed,
    /// Anything else (`Paused`, `Adopted`, `*Complete`): informational.
    Other,
}

impl Polarity {
    pub fn of(type_: &str) -> Polarity {
        if type_.ends_with("Ready") {
            Polarity::Ready
        } else if type_.ends_with("InProgress") {
            Polarity::InProgress
        } else if type_ == "Failed" {
            Polarity::Failed
        } else {
            Polarity::Other
        }
    }

    /// Whether a condition of this type and status needs someone's attention.
    pub fn needs_attention(self, status: ConditionStatus) -> bool {
        match self {
            Polarity::Ready => status != ConditionStatus::True,
            Polarity::InProgress | Polarity::Failed => status == ConditionStatus::True,
            Polarity::Other => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ConditionStatus::*;

    fn object(conditions: Value) -> Value {
        json!({"status": {"phase": "Running", "conditions": conditions}})
    }

    fn c(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        since: Option<i64>,
        og: Option<i64>,
    ) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            since,
            observed_generation: og,
        }
    }

    const T: i64 = 1_796_032_800; // 2026-11-30T10:00:00Z

    #[test]
    fn reads_every_condition_of_any_kind() {
        let o = object(json!([
            {"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid",
             "message": "free text", "lastTransitionTime": "2026-11-30T10:00:00Z", "observedGeneration": 3},
            {"type": "Paused", "status": "Unknown", "reason": "NotPaused"},
            {"type": "NodeUpdateInProgress", "status": "True", "reason": "", "observedGeneration": 0},
        ]));
        assert_eq!(
            decode_conditions(&o).unwrap().conditions,
            vec![
                c(
                    "SigningKeyReady",
                    False,
                    "SigningKeyInvalid",
                    Some(T),
                    Some(3)
                ),
                c("Paused", Unknown, "NotPaused", None, None),
                c("NodeUpdateInProgress", True, REASON_MISSING, None, None),
            ]
        );
    }

    #[test]
    fn no_status_or_no_conditions_is_no_condition() {
        for o in [
            json!({}),
            json!({"status": {}}),
            object(Value::Null),
            object(json!([])),
        ] {
            assert_eq!(decode_conditions(&o), Ok(Decoded::default()), "{o}");
        }
    }

    #[test]
    fn conditions_not_a_list_is_an_object_error() {
        let err = decode_conditions(&object(json!({"type": "Ready"}))).unwrap_err();
        assert_eq!(err.found, "an object");
        assert_eq!(err.kind(), DecodeErrorKind::ConditionsNotAList);
    }

    #[test]
    fn a_bad_entry_is_skipped_and_the_others_kept() {
        let o = object(json!([
            7,
            {"status": "True"},
            {"type": "has space", "status": "True"},
            {"type": "A", "status": "true"},
            {"type": "B"},
            {"type": "C", "status": "False", "lastTransitionTime": "yesterday"},
            {"type": "D", "status": true},
            {"type": "Ready", "status": "True", "reason": "Sécrét"},
            {"type": "Ready", "status": "False", "reason": "Second"},
        ]));
        let d = decode_conditions(&o).unwrap();
        assert_eq!(
            d.conditions,
            vec![c("Ready", True, REASON_INVALID, None, None)]
        );
        let kinds: Vec<&str> = d.skipped.iter().map(|e| e.kind().as_str()).collect();
        assert_eq!(
            kinds,
            [
                "wrong_type",
                "invalid_type",
                "invalid_type",
                "invalid_status",
                "missing_status",
                "invalid_transition_time",
                "wrong_type"
            ]
        );
        for e in &d.skipped {
            assert!(
                !e.to_string().contains('\n') && e.to_string().len() < 200,
                "{e}"
            );
        }
    }

    #[test]
    fn conditions_are_bounded() {
        let many: Vec<Value> = (0..MAX_CONDITIONS + 5)
            .map(|i| json!({"type": format!("T{i}"), "status": "True"}))
            .collect();
        let d = decode_conditions(&object(Value::Array(many))).unwrap();
        assert_eq!(d.conditions.len(), MAX_CONDITIONS);
        assert_eq!(d.skipped, vec![ConditionError::TooMany]);
    }

    #[test]
    fn types_and_polarity() {
        for ok in ["Ready", "SigningKeyReady", "example.com/Ready", "a-b_c.d"] {
            assert!(is_valid_type(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "has space",
            "Ünicode",
            &"A".repeat(MAX_TYPE_LEN + 1),
        ] {
            assert!(!is_valid_type(bad), "{bad}");
        }
        assert_eq!(Polarity::of("SigningKeyReady"), Polarity::Ready);
        assert_eq!(Polarity::of("RolloutInProgress"), Polarity::InProgress);
        assert_eq!(Polarity::of("Failed"), Polarity::Failed);
        assert_eq!(Polarity::of("Paused"), Polarity::Other);
        assert!(Polarity::Ready.needs_attention(Unknown));
        assert!(!Polarity::Ready.needs_attention(True));
        assert!(Polarity::InProgress.needs_attention(True));
        assert!(!Polarity::Other.needs_attention(False));
    }
}
