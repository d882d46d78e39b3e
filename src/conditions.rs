//! The pure function that reads every `status.conditions[]` entry of one object (any kind),
//! in the `metav1.Condition` shape.
//!
//! ```text
//!   object JSON (any shape) --decode_conditions--> Ok(Decoded { conditions, unreadable, skipped, truncated })
//!                                                  Err(ObjectError)   status.conditions is not a list:
//!                                                                     logged, counted, last state kept
//! ```
//!
//! Conditions are read field by field, so that a bad field never hides the condition:
//!
//! - an entry without a readable `type` cannot be exported (it has no name); it is reported
//!   in `skipped`, and `untyped` tells the index to keep the conditions it had before
//!   ([`crate::index::ObjectState::carry_unreadable`]);
//! - an unreadable `status` is exported as `Unknown` with reason [`REASON_STATUS_UNREADABLE`]
//!   unless the index knows the condition's last readable value, which it keeps: a page on
//!   `False` must not resolve because a field turned unreadable;
//! - an unreadable `reason` is exported as [`REASON_INVALID`], an unreadable
//!   `lastTransitionTime` or `observedGeneration` as absent (the index keeps the last one).
//!
//! The first entry of a type wins, as `meta.FindStatusCondition` does in Go. When an object
//! has more than the bound, the conditions that need attention are kept first
//! ([`keep_most_urgent`]) and `truncated` says how many were cut. Messages are never read:
//! they are free text and must not become labels.

use std::collections::HashSet;

use serde_json::Value;

use crate::stats::DecodeErrorKind;

/// The reason exported when the controller wrote a reason that is not a valid
/// `metav1.Condition` reason token; the raw text is logged, never put in a label.
pub const REASON_INVALID: &str = "InvalidReason";

/// The longest reason kept as a label value. metav1 allows 1024 characters; real reasons are
/// short CamelCase words, so anything longer is treated as invalid to keep labels small.
pub const MAX_REASON_LEN: usize = 128;

/// The status of a condition, as `metav1.ConditionStatus`; a missing condition is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// Every status, in the order used for per-status self-metrics.
    pub const ALL: [ConditionStatus; 3] = [Self::True, Self::False, Self::Unknown];

    /// The label value, spelled as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// The reason exported when a condition has none (metav1 requires one; an empty reason is
/// as good as none).
pub const REASON_MISSING: &str = "Unknown";

/// The reason exported with status `Unknown` when a condition's status cannot be read and
/// the watcher has never seen a readable one for it (otherwise the last readable value is
/// kept).
pub const REASON_STATUS_UNREADABLE: &str = "StatusUnreadable";

/// The longest condition type kept: metav1 allows 316 characters (a qualified name).
pub const MAX_TYPE_LEN: usize = 316;

/// Conditions exported per object by default (`--max-conditions-per-object`). Real objects
/// have about ten (a SeiNode has at most 14 types upstream); a controller bug that appends a
/// condition per reconcile must not turn into unbounded series. When an object has more,
/// the ones that need attention are kept first and the cut is exported as
/// `<family>_status_conditions_truncated`.
pub const MAX_CONDITIONS: usize = 64;

/// One condition as the watcher keeps it. `S` is `String` when decoded and an interned
/// `Arc<str>` in the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition<S = String> {
    pub type_: S,
    pub status: ConditionStatus,
    /// The reason, or [`REASON_MISSING`] / [`REASON_INVALID`] / [`REASON_STATUS_UNREADABLE`].
    pub reason: S,
    /// `lastTransitionTime` as Unix seconds.
    pub since: Option<i64>,
    /// `observedGeneration`, when the controller set it (0 counts as unset).
    pub observed_generation: Option<i64>,
}

impl<S: AsRef<str>> Condition<S> {
    /// Whether this condition needs someone's attention: by its type's polarity (a `*Ready`
    /// not True, a `*InProgress` or `Failed` True), any `Unknown`, or describing an older
    /// spec than `generation`.
    pub fn needs_attention(&self, generation: Option<i64>) -> bool {
        Polarity::of(self.type_.as_ref()).needs_attention(self.status)
            || self.status == ConditionStatus::Unknown
            || matches!((generation, self.observed_generation), (Some(g), Some(o)) if g > o)
    }
}

/// A field of a condition that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    Reason,
    LastTransitionTime,
    ObservedGeneration,
}

/// The readable conditions of one object and what was wrong with the others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// At most the bound, the ones that need attention first when cut.
    pub conditions: Vec<Condition>,
    /// The exported conditions with a field that could not be read: (type, field).
    pub unreadable: Vec<(String, Field)>,
    /// Entries without a readable type (not exported: their name is unknown).
    pub untyped: usize,
    /// What was wrong, entry by entry, for the log and the decode-error counter.
    pub skipped: Vec<ConditionError>,
    /// How many readable conditions were not exported because of the bound.
    pub truncated: usize,
    /// How many typed entries a type filter left out (`crate::filters`): never decoded,
    /// never counted against the bound.
    pub filtered: usize,
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

/// What was wrong with one condition entry. The text goes to the log; [`Self::kind`] is the
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
    #[error("condition {0} has field {1} of the wrong type (found {2})")]
    WrongType(String, &'static str, &'static str),
    #[error("{0} more conditions than the bound of {1} (--max-conditions-per-object); those that need attention were kept first")]
    TooMany(usize, usize),
}

impl ConditionError {
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            Self::NotAnObject(_) | Self::WrongType(..) => DecodeErrorKind::WrongType,
            Self::InvalidType(_) => DecodeErrorKind::InvalidType,
            Self::MissingStatus(_) => DecodeErrorKind::MissingStatus,
            Self::InvalidStatus(..) => DecodeErrorKind::InvalidStatus,
            Self::InvalidTransitionTime(..) => DecodeErrorKind::InvalidTransitionTime,
            Self::TooMany(..) => DecodeErrorKind::TooManyConditions,
        }
    }
}

/// Reads every condition of one object, keeping at most `max` (the ones that need
/// attention first; `generation` tells which describe an older spec). Pure: no I/O, no
/// clock. (The watch and `check` read through [`decode_kept_conditions`], with the
/// filters; this is it with none, for the tests.)
#[cfg(test)]
pub fn decode_conditions(
    object: &Value,
    generation: Option<i64>,
    max: usize,
) -> Result<Decoded, ObjectError> {
    decode_kept_conditions(object, generation, max, &|_| true)
}

/// [`decode_conditions`] of the types `keep` accepts only (a type filter); the others are
/// counted in `filtered` and not read further, so they take no room under `max`.
pub fn decode_kept_conditions(
    object: &Value,
    generation: Option<i64>,
    max: usize,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Decoded, ObjectError> {
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
    let mut seen: HashSet<&str> = HashSet::new();
    for entry in entries {
        let type_ = match type_of(entry) {
            Ok(type_) => type_,
            Err(error) => {
                decoded.untyped += 1;
                decoded.skipped.push(error);
                continue;
            }
        };
        if !seen.insert(type_) {
            continue;
        }
        if !keep(type_) {
            decoded.filtered += 1;
            continue;
        }
        let condition = decode_one(type_, entry, &mut decoded);
        decoded.conditions.push(condition);
    }
    decoded.truncated = keep_most_urgent(&mut decoded.conditions, generation, max);
    if decoded.truncated > 0 {
        let kept: HashSet<&str> = decoded.conditions.iter().map(|c| &*c.type_).collect();
        decoded
            .unreadable
            .retain(|(t, _)| kept.contains(t.as_str()));
        decoded
            .skipped
            .push(ConditionError::TooMany(decoded.truncated, max));
    }
    Ok(decoded)
}

/// Keeps at most `max` conditions: those that need attention first, then the rest, each in
/// the order the controller wrote them. Returns how many were cut.
pub fn keep_most_urgent<S: AsRef<str>>(
    conditions: &mut Vec<Condition<S>>,
    generation: Option<i64>,
    max: usize,
) -> usize {
    if conditions.len() <= max {
        return 0;
    }
    let cut = conditions.len() - max;
    // A stable sort: urgent ones first, the controller's order kept within each group.
    conditions.sort_by_key(|c| !c.needs_attention(generation));
    conditions.truncate(max);
    cut
}

/// The entry's type, if it is an object with a valid one.
fn type_of(entry: &Value) -> Result<&str, ConditionError> {
    let Value::Object(fields) = entry else {
        return Err(ConditionError::NotAnObject(json_type(entry)));
    };
    match fields.get("type") {
        Some(Value::String(t)) if is_valid_type(t) => Ok(t),
        Some(Value::String(t)) => Err(ConditionError::InvalidType(truncate(t))),
        None | Some(Value::Null) => Err(ConditionError::InvalidType(String::new())),
        Some(other) => Err(ConditionError::InvalidType(format!(
            "<{}>",
            json_type(other)
        ))),
    }
}

/// Reads the fields of one typed entry; what cannot be read is recorded in `decoded` and
/// replaced as the module docs say.
fn decode_one(type_: &str, entry: &Value, decoded: &mut Decoded) -> Condition {
    let mut unreadable = |field: Field, error: ConditionError| {
        decoded.unreadable.push((type_.to_owned(), field));
        decoded.skipped.push(error);
    };
    let (status, status_read) = match entry.get("status") {
        Some(Value::String(s)) => match s.as_str() {
            "True" => (ConditionStatus::True, true),
            "False" => (ConditionStatus::False, true),
            "Unknown" => (ConditionStatus::Unknown, true),
            other => {
                unreadable(
                    Field::Status,
                    ConditionError::InvalidStatus(type_.to_owned(), truncate(other)),
                );
                (ConditionStatus::Unknown, false)
            }
        },
        None | Some(Value::Null) => {
            unreadable(
                Field::Status,
                ConditionError::MissingStatus(type_.to_owned()),
            );
            (ConditionStatus::Unknown, false)
        }
        Some(other) => {
            unreadable(
                Field::Status,
                ConditionError::WrongType(type_.to_owned(), "status", json_type(other)),
            );
            (ConditionStatus::Unknown, false)
        }
    };
    let since = match entry.get("lastTransitionTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) => match text.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_second()),
            Err(_) => {
                unreadable(
                    Field::LastTransitionTime,
                    ConditionError::InvalidTransitionTime(type_.to_owned(), truncate(text)),
                );
                None
            }
        },
        Some(other) => {
            unreadable(
                Field::LastTransitionTime,
                ConditionError::WrongType(type_.to_owned(), "lastTransitionTime", json_type(other)),
            );
            None
        }
    };
    let reason = match entry.get("reason") {
        _ if !status_read => REASON_STATUS_UNREADABLE.to_owned(),
        None | Some(Value::Null) => REASON_MISSING.to_owned(),
        Some(Value::String(r)) if r.is_empty() => REASON_MISSING.to_owned(),
        Some(Value::String(r)) if is_valid_reason(r) => r.clone(),
        // An invalid reason string is the controller's to fix; the raw text is never a label.
        Some(Value::String(_)) => REASON_INVALID.to_owned(),
        Some(other) => {
            unreadable(
                Field::Reason,
                ConditionError::WrongType(type_.to_owned(), "reason", json_type(other)),
            );
            REASON_INVALID.to_owned()
        }
    };
    let observed_generation = match entry.get("observedGeneration") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().filter(|g| *g > 0),
        Some(other) => {
            unreadable(
                Field::ObservedGeneration,
                ConditionError::WrongType(type_.to_owned(), "observedGeneration", json_type(other)),
            );
            None
        }
    };
    Condition {
        type_: type_.to_owned(),
        status,
        reason,
        since,
        observed_generation,
    }
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

/// Whether `reason` is a `metav1.Condition` reason token (`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)
/// short enough to be a label value.
pub fn is_valid_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= MAX_REASON_LEN
        && first.is_ascii_alphabetic()
        && (last.is_ascii_alphanumeric() || *last == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Bad input is echoed in log lines; keep it to one short line.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
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

    fn decode(o: &Value) -> Result<Decoded, ObjectError> {
        decode_conditions(o, None, MAX_CONDITIONS)
    }

    #[test]
    fn reads_every_condition_of_any_kind() {
        let o = object(json!([
            {"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid",
             "message": "free text", "lastTransitionTime": "2026-11-30T10:00:00Z", "observedGeneration": 3},
            {"type": "Paused", "status": "Unknown", "reason": "NotPaused"},
            {"type": "NodeUpdateInProgress", "status": "True", "reason": "", "observedGeneration": 0},
        ]));
        assert_eq!(
            decode(&o).unwrap().conditions,
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
            assert_eq!(decode(&o), Ok(Decoded::default()), "{o}");
        }
    }

    #[test]
    fn conditions_not_a_list_is_an_object_error() {
        let err = decode(&object(json!({"type": "Ready"}))).unwrap_err();
        assert_eq!(err.found, "an object");
        assert_eq!(err.kind(), DecodeErrorKind::ConditionsNotAList);
    }

    /// Field by field: what can be read is exported, an unreadable status is Unknown with
    /// a reason that says so, and every problem is reported (issue: "a malformed entry
    /// never resolves a page").
    #[test]
    fn a_bad_field_is_reported_and_the_condition_still_exported() {
        let o = object(json!([
            7,
            {"status": "True"},
            {"type": "has space", "status": "True"},
            {"type": {"nested": 1}, "status": "True"},
            {"type": "A", "status": "true"},
            {"type": "B"},
            {"type": "C", "status": "False", "reason": "Broken", "lastTransitionTime": "yesterday"},
            {"type": "D", "status": true},
            {"type": "E", "status": "False", "reason": 5, "observedGeneration": "two"},
            {"type": "Ready", "status": "True", "reason": "Sécrét"},
            {"type": "Ready", "status": "False", "reason": "Second"},
        ]));
        let d = decode(&o).unwrap();
        assert_eq!(
            d.conditions,
            vec![
                c("A", Unknown, REASON_STATUS_UNREADABLE, None, None),
                c("B", Unknown, REASON_STATUS_UNREADABLE, None, None),
                c("C", False, "Broken", None, None),
                c("D", Unknown, REASON_STATUS_UNREADABLE, None, None),
                c("E", False, REASON_INVALID, None, None),
                c("Ready", True, REASON_INVALID, None, None),
            ]
        );
        assert_eq!(d.untyped, 4);
        assert_eq!(
            d.unreadable,
            vec![
                ("A".into(), Field::Status),
                ("B".into(), Field::Status),
                ("C".into(), Field::LastTransitionTime),
                ("D".into(), Field::Status),
                ("E".into(), Field::Reason),
                ("E".into(), Field::ObservedGeneration),
            ]
        );
        let kinds: Vec<&str> = d.skipped.iter().map(|e| e.kind().as_str()).collect();
        assert_eq!(
            kinds,
            [
                "wrong_type",
                "invalid_type",
                "invalid_type",
                "invalid_type",
                "invalid_status",
                "missing_status",
                "invalid_transition_time",
                "wrong_type",
                "wrong_type",
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

    /// A value nested past the view's depth bound reaches the decoder as `TOO_DEEP` and
    /// is one unreadable field, not a failed object.
    #[test]
    fn a_too_deep_field_is_one_unreadable_field() {
        let o = object(json!([
            {"type": "SigningKeyReady", "status": crate::view::TOO_DEEP, "reason": "SigningKeyInvalid"},
        ]));
        let d = decode(&o).unwrap();
        assert_eq!(
            d.conditions,
            vec![c(
                "SigningKeyReady",
                Unknown,
                REASON_STATUS_UNREADABLE,
                None,
                None
            )]
        );
        assert_eq!(
            d.unreadable,
            vec![("SigningKeyReady".into(), Field::Status)]
        );
    }

    /// Over the bound, the conditions that need attention are kept whatever their place in
    /// the list, the healthy ones fill the rest in order, and the cut is counted (issue:
    /// "a 65th condition never arrives").
    #[test]
    fn over_the_bound_the_conditions_that_need_attention_are_kept_first() {
        let mut list: Vec<Value> = (0..70)
            .map(|i| json!({"type": format!("T{i}Ready"), "status": "True"}))
            .collect();
        list[66] =
            json!({"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid"});
        list[67] = json!({"type": "Failed", "status": "True"});
        list[68] = json!({"type": "Paused", "status": "Unknown"});
        list[69] = json!({"type": "T69Ready", "status": "True", "observedGeneration": 1});
        let d = decode_conditions(&object(Value::Array(list)), Some(2), MAX_CONDITIONS).unwrap();
        assert_eq!(d.conditions.len(), MAX_CONDITIONS);
        assert_eq!(d.truncated, 6);
        let types: Vec<&str> = d.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types[..4],
            ["SigningKeyReady", "Failed", "Paused", "T69Ready"]
        );
        assert_eq!(
            types[4..],
            (0..60).map(|i| format!("T{i}Ready")).collect::<Vec<_>>()
        );
        assert_eq!(d.skipped, vec![ConditionError::TooMany(6, MAX_CONDITIONS)]);
        // At the bound exactly: nothing cut.
        let exact: Vec<Value> = (0..MAX_CONDITIONS)
            .map(|i| json!({"type": format!("T{i}"), "status": "True"}))
            .collect();
        let d = decode(&object(Value::Array(exact))).unwrap();
        assert_eq!((d.conditions.len(), d.truncated), (MAX_CONDITIONS, 0));
        assert!(d.skipped.is_empty());
    }

    /// Duplicate types are not counted against the bound, and a list of 5,000 entries of
    /// one type is read in linear time.
    #[test]
    fn duplicates_do_not_count_against_the_bound() {
        let mut list: Vec<Value> = (0..5_000)
            .map(|_| json!({"type": "Ready", "status": "True"}))
            .collect();
        list.push(json!({"type": "SigningKeyReady", "status": "False"}));
        let d = decode(&object(Value::Array(list))).unwrap();
        assert_eq!(d.conditions.len(), 2);
        assert_eq!(d.truncated, 0);
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

    #[test]
    fn reason_tokens() {
        for ok in ["TLSSecretReady", "A", "a_b", "With,Comma:Colon_"] {
            assert!(is_valid_reason(ok), "{ok}");
        }
        let long = "A".repeat(MAX_REASON_LEN + 1);
        for bad in ["", "1abc", "has space", "ends,", "Ünicode", long.as_str()] {
            assert!(!is_valid_reason(bad), "{bad}");
        }
    }
}
