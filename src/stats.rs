//! The watcher's own counters: plain atomics written by the watch and export stages and
//! read at collection time by the export stage (and by tests). Every label value is a
//! fixed `&'static str`, so no self-metric can grow unbounded.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A counter with one fixed label whose values are known at compile time.
#[derive(Debug)]
pub struct LabeledCounter<const N: usize> {
    pub label: &'static str,
    pub values: [&'static str; N],
    counts: [AtomicU64; N],
}

impl<const N: usize> LabeledCounter<N> {
    pub const fn new(label: &'static str, values: [&'static str; N]) -> Self {
        Self {
            label,
            values,
            counts: [const { AtomicU64::new(0) }; N],
        }
    }

    /// Adds one to the counter whose label value is `value`. An unknown value is a bug in
    /// this crate, not bad input: it is counted under the last value ("other").
    pub fn inc(&self, value: &str) {
        let at = self
            .values
            .iter()
            .position(|v| *v == value)
            .unwrap_or(N - 1);
        self.counts[at].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, value: &str) -> u64 {
        self.values
            .iter()
            .position(|v| *v == value)
            .map_or(0, |at| self.counts[at].load(Ordering::Relaxed))
    }

    /// (label value, count) pairs, for the export callbacks.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| (*v, c.load(Ordering::Relaxed)))
    }
}

/// Kinds of watch events, as the `event` label.
pub const WATCH_EVENTS: [&str; 5] = ["apply", "delete", "init", "init_apply", "init_done"];
/// Kinds of watch errors, as the `kind` label (see [`crate::watch::classify`]).
pub const WATCH_ERRORS: [&str; 9] = [
    "crd_missing",
    "forbidden",
    "unauthorized",
    "expired",
    "connect",
    "streaming_refused",
    "bad_request",
    "family_conflict",
    "other",
];
/// Kinds of objects or conditions that could not be read, as the `kind` label (see
/// [`crate::conditions::ConditionError::kind`] and [`crate::seinode::DecodeError::kind`]).
pub const DECODE_ERRORS: [&str; 9] = [
    "conditions_not_a_list",
    "tls_not_an_object",
    "missing_status",
    "invalid_status",
    "invalid_transition_time",
    "wrong_type",
    "invalid_type",
    "too_many_conditions",
    "other",
];
/// What an export failure was about, as the `stage` label: the watcher's own encoding of
/// object series and staleness markers, or the SDK's export of the self-metrics.
pub const EXPORT_STAGES: [&str; 2] = ["objects", "self"];

/// Counters of one watched resource (its `resource` label is [`ResourceStats::label`]).
#[derive(Debug)]
pub struct ResourceStats {
    /// `plural.group`.
    pub label: String,
    /// Watch events received, by kind: shows the watch is alive and how busy it is.
    pub watch_events: LabeledCounter<5>,
    /// Watch stream errors by kind: a CRD that is missing, RBAC refusals, expired
    /// resourceVersions, connection failures.
    pub watch_errors: LabeledCounter<9>,
    /// Objects or conditions skipped because they could not be read, by kind.
    pub decode_errors: LabeledCounter<9>,
    /// Unix seconds of the last completed (re)list; 0 before the first one.
    pub last_list_unix: AtomicI64,
}

impl ResourceStats {
    pub fn new(label: String) -> Self {
        Self {
            label,
            watch_events: LabeledCounter::new("event", WATCH_EVENTS),
            watch_errors: LabeledCounter::new("kind", WATCH_ERRORS),
            decode_errors: LabeledCounter::new("kind", DECODE_ERRORS),
            last_list_unix: AtomicI64::new(0),
        }
    }
}

#[derive(Debug)]
pub struct Stats {
    /// Per watched resource, indexed by [`crate::resource::ResourceId`].
    pub resources: Vec<ResourceStats>,
    /// Failed exports, by stage.
    pub export_errors: LabeledCounter<2>,
    /// Successful exports of object series (periodic and event-driven).
    pub exports: AtomicU64,
    /// Staleness markers delivered for series that disappeared.
    pub staleness_markers: AtomicU64,
}

impl Stats {
    /// Counters for resources labelled `labels` (`plural.group`), in watch order.
    pub fn new(labels: impl IntoIterator<Item = String>) -> Self {
        Self {
            resources: labels.into_iter().map(ResourceStats::new).collect(),
            export_errors: LabeledCounter::new("stage", EXPORT_STAGES),
            exports: AtomicU64::new(0),
            staleness_markers: AtomicU64::new(0),
        }
    }

    /// The counters of one resource.
    pub fn resource(&self, id: crate::resource::ResourceId) -> &ResourceStats {
        // The watch creates ids only from positions in `resources` (Shared::new).
        &self.resources[id.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label_and_folds_unknown_values_into_the_last() {
        let c = LabeledCounter::new("kind", ["a", "b", "other"]);
        c.inc("a");
        c.inc("a");
        c.inc("zzz");
        assert_eq!(c.get("a"), 2);
        assert_eq!(c.get("b"), 0);
        assert_eq!(c.get("other"), 1);
        assert_eq!(
            c.snapshot().collect::<Vec<_>>(),
            vec![("a", 2), ("b", 0), ("other", 1)]
        );
    }

    #[test]
    fn decode_error_kinds_are_all_labels() {
        use crate::conditions::{ConditionError, ObjectError};
        use crate::seinode::DecodeError;
        assert!(DECODE_ERRORS.contains(&ObjectError { found: "x" }.kind()));
        for e in [
            ConditionError::NotAnObject("x"),
            ConditionError::InvalidType(String::new()),
            ConditionError::MissingStatus(String::new()),
            ConditionError::InvalidStatus(String::new(), String::new()),
            ConditionError::InvalidTransitionTime(String::new(), String::new()),
            ConditionError::WrongType(String::new(), String::new()),
            ConditionError::TooMany,
        ] {
            assert!(DECODE_ERRORS.contains(&e.kind()), "{}", e.kind());
        }
        for e in [
            DecodeError::ConditionsNotAList { found: "x" },
            DecodeError::TlsNotAnObject { found: "x" },
            DecodeError::MissingStatus,
            DecodeError::InvalidStatus(String::new()),
            DecodeError::InvalidTransitionTime(String::new()),
            DecodeError::WrongType {
                field: "x",
                detail: String::new(),
            },
        ] {
            assert!(DECODE_ERRORS.contains(&e.kind()), "{}", e.kind());
        }
    }
}
