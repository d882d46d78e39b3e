//! Which series one object's state produces: a pure function, so that what the exporter
//! sends and what it marks stale are both derived from states, never journaled.
//!
//! ```text
//!   ObjectState ──series_of──▶ [(Series, value)]
//!     per condition:  <family>_status_condition{type,status,reason} 1
//!                     <family>_status_condition_last_transition_timestamp_seconds{type}  (if set)
//!                     <family>_status_condition_outdated{type} generation - observedGeneration  (if > 0)
//!     per object:     <family>_status_conditions_truncated  conditions cut by the bound  (if > 0)
//!                     <family>_labels{label_<key>,annotation_<key>} 1  (allowlisted resources)
//!     SeiNode seed:   seinode_sidecar_tls_secret_ready / _status{status,reason} / _last_transition_...
//! ```

use std::sync::Arc;

use crate::conditions::ConditionStatus;
use crate::index::{InfoLabels, ObjectState};

/// The identity of one series of an object (the object's own labels come from its key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    /// `<family>_status_condition{type,status,reason}`
    Condition {
        type_: Arc<str>,
        status: ConditionStatus,
        reason: Arc<str>,
    },
    /// `<family>_status_condition_last_transition_timestamp_seconds{type}`
    Since { type_: Arc<str> },
    /// `<family>_status_condition_outdated{type}`
    Outdated { type_: Arc<str> },
    /// `<family>_status_conditions_truncated`: present only while the object has more
    /// conditions than `--max-conditions-per-object`.
    Truncated,
    /// `seinode_sidecar_tls_secret_ready`
    TlsReady,
    /// `seinode_sidecar_tls_secret_status{status,reason}`
    TlsStatus {
        status: ConditionStatus,
        reason: Arc<str>,
    },
    /// `seinode_sidecar_tls_secret_last_transition_timestamp_seconds`
    TlsSince,
    /// `<family>_labels{label_<key>=...,annotation_<key>=...}`: the object's allowlisted
    /// labels and annotations (`crate::labels`). Its identity is every pair, so a changed
    /// value is a new series and the old one is marked stale, like a condition's pair.
    Info { labels: InfoLabels },
}

/// Every series of `state` with its value. `seed` adds the sidecar-TLS series (SeiNodes).
pub fn series_of(state: &ObjectState, seed: bool) -> Vec<(Series, i64)> {
    let mut out = Vec::with_capacity(state.conditions.len() * 2 + 3);
    for c in &state.conditions {
        out.push((
            Series::Condition {
                type_: c.type_.clone(),
                status: c.status,
                reason: c.reason.clone(),
            },
            1,
        ));
        if let Some(since) = c.since {
            out.push((
                Series::Since {
                    type_: c.type_.clone(),
                },
                since,
            ));
        }
        if let Some(lag) = state.outdated_by(c) {
            out.push((
                Series::Outdated {
                    type_: c.type_.clone(),
                },
                lag,
            ));
        }
    }
    if state.truncated > 0 {
        out.push((Series::Truncated, i64::from(state.truncated)));
    }
    if let (true, Some(v)) = (seed, &state.tls) {
        if let Some(ready) = v.status.ready_value() {
            out.push((Series::TlsReady, ready as i64));
        }
        out.push((
            Series::TlsStatus {
                status: v.status,
                reason: v.reason.clone(),
            },
            1,
        ));
        if let Some(since) = v.since {
            out.push((Series::TlsSince, since));
        }
    }
    if let Some(labels) = &state.info {
        out.push((
            Series::Info {
                labels: labels.clone(),
            },
            1,
        ));
    }
    out
}

/// The series of `state` that speak of trouble, with their values: those of each condition
/// that needs attention ([`crate::conditions::Condition::needs_attention`]: a `*Ready` not
/// True, a `*InProgress` or `Failed` True, any Unknown, any describing an older spec), with
/// its since and outdated series; the truncation count; and the seed's sidecar-TLS series unless its verdict is True.
/// What a watcher that stops without a successor leaves to linger (`ExportKind::Retire`):
/// it no longer vouches for anything, and of its last view only what could hold an alert
/// open is kept; a healthy value would outvote a successor's view of the same condition
/// (the rules' `unless ... status="True"`) for the 5-minute lookback.
pub fn troubled_series_of(state: &ObjectState, seed: bool) -> Vec<(Series, i64)> {
    let troubled = |type_: &str| {
        state
            .conditions
            .iter()
            .any(|c| &*c.type_ == type_ && c.needs_attention(state.generation))
    };
    let tls_troubled = state
        .tls
        .as_ref()
        .is_some_and(|v| v.status != ConditionStatus::True);
    let mut kept: Vec<(Series, i64)> = series_of(state, seed)
        .into_iter()
        .filter(|(series, _)| match series {
            Series::Condition { type_, .. }
            | Series::Since { type_ }
            | Series::Outdated { type_ } => troubled(type_),
            Series::TlsReady | Series::TlsStatus { .. } | Series::TlsSince => tls_troubled,
            // A cut list is a ticket of its own, whoever holds it.
            Series::Truncated => true,
            Series::Info { .. } => false,
        })
        .collect();
    // The info series lingers with the object's troubled series: a page that joins it
    // (for its route) must keep the same labels, not turn into another alert.
    if let (false, Some(labels)) = (kept.is_empty(), &state.info) {
        kept.push((
            Series::Info {
                labels: labels.clone(),
            },
            1,
        ));
    }
    kept
}

/// The series of `old` that `new` no longer has: what must be marked stale.
pub fn vanished(old: &[(Series, i64)], new: &[(Series, i64)]) -> Vec<Series> {
    old.iter()
        .filter(|(s, _)| !new.iter().any(|(n, _)| n == s))
        .map(|(s, _)| s.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::Condition;
    use crate::index::ConditionIndex;
    use crate::seinode::Verdict;
    use ConditionStatus::*;

    /// type, status, reason, lastTransitionTime, observedGeneration
    type Row<'a> = (&'a str, ConditionStatus, &'a str, Option<i64>, Option<i64>);

    fn state(conditions: Vec<Row>, tls: Option<(ConditionStatus, &str)>) -> ObjectState {
        let mut index = ConditionIndex::new();
        index.state(
            Some(4),
            conditions
                .into_iter()
                .map(|(t, status, reason, since, og)| Condition {
                    type_: t.into(),
                    status,
                    reason: reason.into(),
                    since,
                    observed_generation: og,
                })
                .collect(),
            tls.map(|(status, reason)| Verdict {
                status,
                reason: reason.into(),
                since: Some(9),
            }),
        )
    }

    fn cond(t: &str, status: ConditionStatus, reason: &str) -> Series {
        Series::Condition {
            type_: t.into(),
            status,
            reason: reason.into(),
        }
    }

    #[test]
    fn one_condition_series_per_type_plus_since_and_outdated() {
        let s = state(
            vec![
                (
                    "SigningKeyReady",
                    False,
                    "SigningKeyInvalid",
                    Some(100),
                    Some(3),
                ),
                ("Paused", Unknown, "Unknown", None, Some(4)),
            ],
            None,
        );
        assert_eq!(
            series_of(&s, true),
            vec![
                (cond("SigningKeyReady", False, "SigningKeyInvalid"), 1),
                (
                    Series::Since {
                        type_: "SigningKeyReady".into()
                    },
                    100
                ),
                (
                    Series::Outdated {
                        type_: "SigningKeyReady".into()
                    },
                    1
                ),
                (cond("Paused", Unknown, "Unknown"), 1),
            ]
        );
    }

    #[test]
    fn seed_series_only_for_seinodes_and_no_ready_sample_when_unknown() {
        let s = state(vec![], Some((False, "TLSSecretNotFound")));
        assert_eq!(
            series_of(&s, true),
            vec![
                (Series::TlsReady, 0),
                (
                    Series::TlsStatus {
                        status: False,
                        reason: "TLSSecretNotFound".into()
                    },
                    1
                ),
                (Series::TlsSince, 9),
            ]
        );
        assert!(series_of(&s, false).is_empty());
        let s = state(vec![], Some((Unknown, "ConditionMissing")));
        assert!(!series_of(&s, true)
            .iter()
            .any(|(s, _)| *s == Series::TlsReady));
    }

    #[test]
    fn troubled_series_are_those_of_conditions_that_need_attention_or_are_unknown() {
        let s = state(
            vec![
                (
                    "SigningKeyReady",
                    False,
                    "SigningKeyInvalid",
                    Some(100),
                    Some(3),
                ),
                ("NodeKeyReady", True, "NodeKeyValid", Some(50), None),
                ("NodeUpdateInProgress", False, "Idle", Some(60), None),
                ("Failed", True, "TaskFailed", Some(70), None),
                ("Paused", Unknown, "Unknown", None, None),
                ("Adopted", True, "Adopted", Some(80), None),
            ],
            Some((True, "TLSSecretReady")),
        );
        let kept: Vec<Series> = troubled_series_of(&s, true)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            kept,
            vec![
                cond("SigningKeyReady", False, "SigningKeyInvalid"),
                Series::Since {
                    type_: "SigningKeyReady".into()
                },
                Series::Outdated {
                    type_: "SigningKeyReady".into()
                },
                cond("Failed", True, "TaskFailed"),
                Series::Since {
                    type_: "Failed".into()
                },
                cond("Paused", Unknown, "Unknown"),
            ]
        );
        let broken_tls = state(vec![], Some((False, "TLSSecretNotFound")));
        assert_eq!(
            troubled_series_of(&broken_tls, true),
            series_of(&broken_tls, true)
        );
    }

    #[test]
    fn a_reason_change_retires_the_old_pair_only() {
        let old = series_of(
            &state(vec![("Ready", False, "NotReady", Some(1), None)], None),
            true,
        );
        let new = series_of(
            &state(vec![("Ready", False, "Invalid", Some(1), None)], None),
            true,
        );
        assert_eq!(vanished(&old, &new), vec![cond("Ready", False, "NotReady")]);
        assert_eq!(vanished(&old, &[]).len(), 2, "deleted: everything");
        assert!(vanished(&old, &old).is_empty());
    }
}
