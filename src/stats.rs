//! The watcher's own counters: plain atomics written by the watch and export stages and
//! read at collection time by the export stage (and by tests). Every label is an enum of
//! fixed values ([`Label`]), so no self-metric can grow unbounded and a counter can only be
//! given a value it knows.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// One label of a self-metric: its name and every value it can take.
pub trait Label: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The label's name (`kind`, `event`, `stage`).
    const KEY: &'static str;
    /// Every value, in the order the counters keep them.
    const ALL: &'static [Self];
    /// The value as it appears in the metric.
    fn as_str(self) -> &'static str;
    /// The value's position in [`Self::ALL`].
    fn position(self) -> usize;
}

/// Defines a label enum: its variants with their metric values, `as_str`, `ALL`, Display.
/// Also used for the export kinds of the failure log (`export/failures.rs`).
macro_rules! label {
    ($(#[$doc:meta])* $name:ident: $key:literal { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl Label for $name {
            const KEY: &'static str = $key;
            const ALL: &'static [Self] = &[$(Self::$variant,)+];
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }
            fn position(self) -> usize {
                self as usize
            }
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                Label::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use label;

label! {
    /// Kinds of watch events, as the `event` label.
    WatchEvent: "event" {
        Apply = "apply",
        Delete = "delete",
        Init = "init",
        InitApply = "init_apply",
        InitDone = "init_done",
    }
}

label! {
    /// Kinds of watch errors, as the `kind` label (see `watch::errors::classify`).
    WatchErrorKind: "kind" {
        /// 404: the resource is not served (its CRD is not installed).
        CrdMissing = "crd_missing",
        /// 403: RBAC refuses list/watch.
        Forbidden = "forbidden",
        /// 401: the credentials are rejected.
        Unauthorized = "unauthorized",
        /// 410: the resourceVersion expired; the watch relists.
        Expired = "expired",
        /// No answer: the API server cannot be reached (or the connection hung).
        Connect = "connect",
        /// 400/422 about `sendInitialEvents`: WatchList is off; the watch falls back to pages.
        StreamingRefused = "streaming_refused",
        /// Any other 400/422, such as a label selector the API server cannot parse.
        BadRequest = "bad_request",
        /// A second resource would export the same metric family.
        FamilyConflict = "family_conflict",
        /// Anything else.
        Other = "other",
    }
}

label! {
    /// Kinds of objects or conditions that could not be read, as the `kind` label (see
    /// [`crate::conditions::ConditionError::kind`] and [`crate::seinode::DecodeError::kind`]).
    DecodeErrorKind: "kind" {
        ConditionsNotAList = "conditions_not_a_list",
        TlsNotAnObject = "tls_not_an_object",
        MissingStatus = "missing_status",
        InvalidStatus = "invalid_status",
        InvalidTransitionTime = "invalid_transition_time",
        WrongType = "wrong_type",
        InvalidType = "invalid_type",
        TooManyConditions = "too_many_conditions",
        /// An allowlisted label or annotation value longer than `crate::labels::MAX_VALUE_LEN`:
        /// copied cut onto the info series.
        LabelValueTooLong = "label_value_too_long",
        /// An object without metadata.name (or metadata.namespace, if namespaced).
        Other = "other",
    }
}

label! {
    /// What an export failure was about, as the `stage` label: the watcher's own encoding
    /// of object series and staleness markers, or the SDK's export of the self-metrics.
    ExportStage: "stage" {
        Objects = "objects",
        SelfMetrics = "self",
    }
}

/// A counter per value of one label.
#[derive(Debug)]
pub struct Counter<L: Label> {
    counts: Box<[AtomicU64]>,
    _label: std::marker::PhantomData<L>,
}

impl<L: Label> Default for Counter<L> {
    fn default() -> Self {
        Self {
            counts: L::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            _label: std::marker::PhantomData,
        }
    }
}

impl<L: Label> Counter<L> {
    pub fn inc(&self, value: L) {
        self.counts[value.position()].fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn get(&self, value: L) -> u64 {
        self.counts[value.position()].load(Ordering::Relaxed)
    }

    /// (label value, count) pairs, for the export callbacks.
    pub fn snapshot(&self) -> impl Iterator<Item = (L, u64)> + '_ {
        L::ALL
            .iter()
            .zip(self.counts.iter())
            .map(|(v, c)| (*v, c.load(Ordering::Relaxed)))
    }
}

/// Counters of one watched resource (its `resource` label is [`ResourceStats::label`]).
#[derive(Debug)]
pub struct ResourceStats {
    /// `plural.group`.
    pub label: String,
    /// Watch events received, by kind: shows the watch is alive and how busy it is.
    pub watch_events: Counter<WatchEvent>,
    /// Watch stream errors by kind: a CRD that is missing, RBAC refusals, expired
    /// resourceVersions, connection failures.
    pub watch_errors: Counter<WatchErrorKind>,
    /// Objects or conditions skipped because they could not be read, by kind.
    pub decode_errors: Counter<DecodeErrorKind>,
    /// Unix seconds of the last completed (re)list; 0 before the first one.
    pub last_list_unix: AtomicI64,
}

impl ResourceStats {
    pub fn new(label: String) -> Self {
        Self {
            label,
            watch_events: Counter::default(),
            watch_errors: Counter::default(),
            decode_errors: Counter::default(),
            last_list_unix: AtomicI64::new(0),
        }
    }
}

#[derive(Debug)]
pub struct Stats {
    /// Per watched resource, indexed by [`crate::resource::ResourceId`].
    pub resources: Vec<ResourceStats>,
    /// Failed exports, by stage.
    pub export_errors: Counter<ExportStage>,
    /// Successful exports of object series (periodic and event-driven).
    pub exports: AtomicU64,
    /// Staleness markers delivered for series that disappeared.
    pub staleness_markers: AtomicU64,
    /// Whether another live process with this replica's identity holds the leader-election
    /// Lease ([`crate::lease`]): a misconfiguration that leaves this one standing by.
    pub duplicate_identity: AtomicBool,
    /// The configured filters: (resource label, or "" for the namespace deny list; filter;
    /// entries), set once at start (`crate::filters::Filters::counts`).
    pub filters: std::sync::OnceLock<Vec<(String, &'static str, u64)>>,
}

impl Stats {
    /// Counters for resources labelled `labels` (`plural.group`), in watch order.
    pub fn new(labels: impl IntoIterator<Item = String>) -> Self {
        Self {
            resources: labels.into_iter().map(ResourceStats::new).collect(),
            export_errors: Counter::default(),
            exports: AtomicU64::new(0),
            staleness_markers: AtomicU64::new(0),
            duplicate_identity: AtomicBool::new(false),
            filters: std::sync::OnceLock::new(),
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
    fn counts_by_label_value() {
        let c = Counter::<WatchEvent>::default();
        c.inc(WatchEvent::Apply);
        c.inc(WatchEvent::Apply);
        c.inc(WatchEvent::InitDone);
        assert_eq!(c.get(WatchEvent::Apply), 2);
        assert_eq!(c.get(WatchEvent::Delete), 0);
        assert_eq!(
            c.snapshot()
                .map(|(v, n)| (v.as_str(), n))
                .collect::<Vec<_>>(),
            vec![
                ("apply", 2),
                ("delete", 0),
                ("init", 0),
                ("init_apply", 0),
                ("init_done", 1)
            ]
        );
    }

    #[test]
    fn every_label_value_is_distinct_and_in_position() {
        fn check<L: Label>() {
            let mut seen = std::collections::HashSet::new();
            for (i, v) in L::ALL.iter().enumerate() {
                assert_eq!(v.position(), i, "{v:?}");
                assert!(
                    seen.insert(v.as_str()),
                    "{} repeats in {}",
                    v.as_str(),
                    L::KEY
                );
                assert!(
                    v.as_str()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{}",
                    v.as_str()
                );
            }
        }
        check::<WatchEvent>();
        check::<WatchErrorKind>();
        check::<DecodeErrorKind>();
        check::<ExportStage>();
    }
}
