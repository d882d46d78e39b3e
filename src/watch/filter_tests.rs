//! The watch stage with filters (`crate::filters`) and label allowlists (`crate::labels`):
//! filtered types and denied namespaces never reach the index; allowlisted labels do, and
//! only those.

use std::collections::BTreeMap;

use super::*;
use crate::filters::{Filters, TypesArg};
use crate::labels::{allowlists, AllowlistArg};

fn seinode(ns: &str, name: &str, labels: &[(&str, &str)]) -> ObjectView {
    let mut o = ObjectView::default();
    o.metadata.name = Some(name.to_owned());
    o.metadata.namespace = Some(ns.to_owned());
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o.metadata.labels = (!labels.is_empty()).then_some(labels);
    o.data = json!({"status": {"conditions": [
        {"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid"},
        {"type": "Paused", "status": "False", "reason": "NotPaused"},
        {"type": "Adopted", "status": "True", "reason": "Adopted"},
    ]}});
    o
}

async fn watch_with(events: Events, shared: Arc<Shared>, filters: Filters, labels: &str) {
    let resource = shared.resources()[0].clone().unwrap();
    let readiness = Readiness::new(shared.clone(), 1);
    let specs = vec![ResourceSpec::defaults().remove(0)];
    let lists = if labels.is_empty() {
        vec![]
    } else {
        allowlists(&specs, &[AllowlistArg::parse_labels(labels).unwrap()], &[]).unwrap()
    };
    let mut handler = ScopeHandler::new(
        ResourceId(0),
        resource,
        Scope::AllNamespaces,
        shared,
        readiness,
    )
    .with_filters_and_labels(Arc::new(filters), lists.first().cloned());
    watch_scope(futures::stream::iter(events), &mut handler, false).await;
}

fn types_of(shared: &Shared, ns: &str, name: &str) -> Option<Vec<String>> {
    let mut index = shared.index_mut();
    let key = index.key(ResourceId(0), ns, name);
    index
        .get(&key)
        .map(|s| s.conditions.iter().map(|c| c.type_.to_string()).collect())
}

#[tokio::test]
async fn filtered_types_and_denied_namespaces_never_reach_the_index() {
    let (shared, _) = seinode_shared();
    let specs = vec![ResourceSpec::defaults().remove(0)];
    let filters = Filters::new(
        &specs,
        &[],
        &[TypesArg::parse_deny("seinodes=Paused,Adopted").unwrap()],
        &["scratch".into()],
        &[],
    )
    .unwrap();
    watch_with(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(seinode("sei", "a", &[]))),
            Ok(Event::InitApply(seinode("scratch", "b", &[]))),
            Ok(Event::InitDone),
        ],
        shared.clone(),
        filters,
        "",
    )
    .await;
    assert_eq!(
        types_of(&shared, "sei", "a"),
        Some(vec!["SigningKeyReady".to_owned()])
    );
    assert_eq!(types_of(&shared, "scratch", "b"), None, "denied namespace");
    assert_eq!(shared.index().count_filtered_by_resource(1), [2]);
    // No filter: everything.
    let (shared, _) = seinode_shared();
    watch_with(
        vec![Ok(Event::Apply(seinode("scratch", "b", &[])))],
        shared.clone(),
        Filters::default(),
        "",
    )
    .await;
    assert_eq!(types_of(&shared, "scratch", "b").map(|t| t.len()), Some(3));
}

#[tokio::test]
async fn only_allowlisted_labels_are_kept_and_a_change_is_a_new_state() {
    let (shared, _) = seinode_shared();
    watch_with(
        vec![
            Ok(Event::Apply(seinode(
                "sei",
                "a",
                &[("team", "infra"), ("other", "x")],
            ))),
            Ok(Event::Apply(seinode("sei", "none", &[("other", "x")]))),
        ],
        shared.clone(),
        Filters::default(),
        "seinodes=[team,chain]",
    )
    .await;
    let info = |name: &str| {
        let mut index = shared.index_mut();
        let key = index.key(ResourceId(0), "sei", name);
        index.get(&key).and_then(|s| {
            s.info.as_ref().map(|l| {
                l.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
            })
        })
    };
    assert_eq!(info("a"), Some(vec!["label_team=infra".to_owned()]));
    assert_eq!(info("none"), Some(vec![]), "an info series without labels");
    drop(shared.index_mut().take_changed());
    watch_with(
        vec![Ok(Event::Apply(seinode(
            "sei",
            "a",
            &[("team", "payments")],
        )))],
        shared.clone(),
        Filters::default(),
        "seinodes=[team,chain]",
    )
    .await;
    assert_eq!(info("a"), Some(vec!["label_team=payments".to_owned()]));
    assert_eq!(
        shared.index_mut().take_changed().len(),
        1,
        "a label change is a change"
    );
    // Without an allowlist there is no info series at all.
    let (plain, _) = seinode_shared();
    watch_with(
        vec![Ok(Event::Apply(seinode("sei", "a", &[("team", "infra")])))],
        plain.clone(),
        Filters::default(),
        "",
    )
    .await;
    let mut index = plain.index_mut();
    let key = index.key(ResourceId(0), "sei", "a");
    assert_eq!(index.get(&key).unwrap().info, None);
}

#[tokio::test]
async fn a_long_value_is_cut_counted_and_the_object_kept() {
    let (shared, _) = seinode_shared();
    let long = "x".repeat(1000);
    watch_with(
        vec![Ok(Event::Apply(seinode("sei", "a", &[("team", &long)])))],
        shared.clone(),
        Filters::default(),
        "seinodes=[team]",
    )
    .await;
    let stats = shared.stats.resource(ResourceId(0));
    assert_eq!(
        stats.decode_errors.get(DecodeErrorKind::LabelValueTooLong),
        1
    );
    let mut index = shared.index_mut();
    let key = index.key(ResourceId(0), "sei", "a");
    let state = index.get(&key).unwrap();
    assert_eq!(
        state.conditions.len(),
        3,
        "the object and its conditions stay"
    );
    assert_eq!(
        state.info.as_ref().unwrap()[0].1.len(),
        crate::labels::MAX_VALUE_LEN
    );
}
