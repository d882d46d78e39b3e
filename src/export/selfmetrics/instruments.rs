//! The self-metrics' instruments: observable gauges and counters that read the shared
//! state and counters ([`crate::stats`]) at collection time, registered once per provider.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry::KeyValue;

use crate::conditions::ConditionStatus;
use crate::export::names;
use crate::state::Shared;
use crate::stats::{Counter, ExportStage, Label, ResourceStats};

pub(super) type Kept = Vec<Box<dyn std::any::Any + Send + Sync>>;

/// A gauge with one value per watched resource, labelled `resource`, read by `values` at
/// collection time (in the order of `stats.resources`).
fn per_resource_gauge(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    values: impl Fn(&Shared) -> Vec<u64> + Send + Sync + 'static,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for (stats, value) in s.stats.resources.iter().zip(values(&s)) {
                    o.observe(value, &[KeyValue::new("resource", stats.label.clone())]);
                }
            })
            .build(),
    )
}

/// A counter per watched resource and value of the label `L`.
fn per_resource_counter<L: Label>(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    counter: fn(&ResourceStats) -> &Counter<L>,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for stats in &s.stats.resources {
                    for (value, count) in counter(stats).snapshot() {
                        o.observe(
                            count,
                            &[
                                KeyValue::new(L::KEY, value.as_str()),
                                KeyValue::new("resource", stats.label.clone()),
                            ],
                        );
                    }
                }
            })
            .build(),
    )
}

/// A gauge or counter without labels, read by `value` at collection time.
fn single(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    counter: bool,
    value: impl Fn(&Shared) -> u64 + Send + Sync + 'static,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    let callback = move |o: &dyn AsyncInstrument<u64>| o.observe(value(&s), &[]);
    if counter {
        Box::new(
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(callback)
                .build(),
        )
    } else {
        Box::new(
            meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(callback)
                .build(),
        )
    }
}

pub(super) fn register(meter: &Meter, shared: &Arc<Shared>) -> Kept {
    let n = shared.stats.resources.len();
    let s = shared.clone();
    vec![
        single(
            meter,
            shared,
            names::UP,
            "Always 1 while the watcher runs; alert on absent() to catch a dead pipeline",
            false,
            |_| 1,
        ),
        per_resource_gauge(
            meter,
            shared,
            names::OBJECTS,
            "Watched objects in the index, per resource",
            move |s| s.index().count_by_resource(n),
        ),
        Box::new(
            meter
                .u64_observable_gauge(names::TLS_OBJECTS)
                .with_description("SeiNodes with sidecar TLS (the seed's condition), by its status")
                .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                    let counts = s.index().count_tls_by_status();
                    for (status, count) in ConditionStatus::ALL.iter().zip(counts) {
                        o.observe(count, &[KeyValue::new("status", status.as_str())]);
                    }
                })
                .build(),
        ),
        last_list_gauge(meter, shared),
        single(
            meter,
            shared,
            names::LEADER,
            "1 on the replica that exports the object series (always, without leader election), 0 on a standby",
            false,
            |s| u64::from(s.is_leader()),
        ),
        single(
            meter,
            shared,
            names::DUPLICATE_IDENTITY,
            "1 while another live process with this replica's identity holds the leader-election Lease (this one stands by)",
            false,
            |s| u64::from(s.stats.duplicate_identity.load(Ordering::Relaxed)),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::RESOURCE_BLIND,
            "1 while the resource's watch has failed for 90 s or more: its object series are withdrawn",
            |s| s.blind_resources().into_iter().map(u64::from).collect(),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::UNDECODABLE,
            "Objects whose status.conditions cannot be decoded now; their last readable conditions are kept",
            move |s| s.index().count_undecodable_by_resource(n),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::UNREADABLE,
            "Objects with condition entries that cannot be read whole now; what can be read is exported, the last readable values are kept",
            move |s| s.index().count_unreadable_by_resource(n),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::REFUSED,
            "Healthy conditions not exported because their namespace or resource is at its series bound (--max-series-per-namespace, --max-series-per-resource)",
            move |s| s.index().count_refused_by_resource(n),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::FILTERED,
            "Condition entries of watched objects left out now by a type filter (--condition-types-allow, --condition-types-deny)",
            move |s| s.index().count_filtered_by_resource(n),
        ),
        filters_gauge(meter, shared),
        per_resource_counter(
            meter,
            shared,
            names::WATCH_EVENTS,
            "Watch events received, by resource and event",
            |r| &r.watch_events,
        ),
        per_resource_counter(
            meter,
            shared,
            names::WATCH_ERRORS,
            "Watch errors, by resource and kind",
            |r| &r.watch_errors,
        ),
        per_resource_counter(
            meter,
            shared,
            names::DECODE_ERRORS,
            "Objects or conditions skipped because they could not be read, by resource and kind",
            |r| &r.decode_errors,
        ),
        export_errors_counter(meter, shared),
        single(
            meter,
            shared,
            names::EXPORTS,
            "Object exports delivered whole (periodic and event-driven)",
            true,
            |s| s.stats.exports.load(Ordering::Relaxed),
        ),
        single(
            meter,
            shared,
            names::STALENESS_MARKERS,
            "Staleness markers delivered for object series that disappeared",
            true,
            |s| s.stats.staleness_markers.load(Ordering::Relaxed),
        ),
    ]
}

/// The last completed (re)list per resource, in Unix seconds (an i64 gauge).
fn last_list_gauge(meter: &Meter, shared: &Arc<Shared>) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .i64_observable_gauge(names::LAST_LIST)
            .with_unit("s")
            .with_description(
                "Unix time of the last completed (re)list, per resource; 0 before the first",
            )
            .with_callback(move |o: &dyn AsyncInstrument<i64>| {
                for stats in &s.stats.resources {
                    o.observe(
                        stats.last_list_unix.load(Ordering::Relaxed),
                        &[KeyValue::new("resource", stats.label.clone())],
                    );
                }
            })
            .build(),
    )
}

/// The configured filters: entries per resource and filter (the namespace deny list with an
/// empty `resource`); no series when nothing is filtered.
fn filters_gauge(meter: &Meter, shared: &Arc<Shared>) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_gauge(names::FILTERS)
            .with_description(
                "Configured filters: condition types (per resource) or namespaces left out, by filter",
            )
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for (resource, filter, n) in s.stats.filters.get().into_iter().flatten() {
                    o.observe(
                        *n,
                        &[
                            KeyValue::new("resource", resource.clone()),
                            KeyValue::new("filter", *filter),
                        ],
                    );
                }
            })
            .build(),
    )
}

/// Failed export requests by stage.
fn export_errors_counter(
    meter: &Meter,
    shared: &Arc<Shared>,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_counter(names::EXPORT_ERRORS)
            .with_description("Failed OTLP export requests, by stage")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for (stage, count) in s.stats.export_errors.snapshot() {
                    o.observe(count, &[KeyValue::new(ExportStage::KEY, stage.as_str())]);
                }
            })
            .build(),
    )
}
