//! Labels from objects (issue 21, item 3): an allowlist of object labels and annotations
//! per resource, copied onto one info series per object, `<family>_labels{namespace,name,
//! label_<key>=...,annotation_<key>=...} 1`, so that rules and routes can join on them
//! (`* on (cluster, namespace, name) group_left (label_team) seinode_labels`), as
//! kube-state-metrics' `--metric-labels-allowlist` and `kube_<kind>_labels` do.
//!
//! ```text
//!   --metric-labels-allowlist seinodes=[team,chain]  ─┐ parse, sanitize, check collisions
//!   --metric-annotations-allowlist seinodes=[owner]  ─┴▶ Allowlists[resource id]
//!        │ view.rs decodes only the allowlisted keys of metadata.labels/annotations
//!        ▼
//!   handler: copy (bounded, values cut at MAX_VALUE_LEN) ──▶ ObjectState.info ──▶ Series::Info
//! ```
//!
//! Bounds: keys are named (no `*`: every label of every object would be unbounded
//! cardinality), at most [`MAX_KEYS`] per resource, so an object has at most that many
//! copied labels; a value longer than [`MAX_VALUE_LEN`] bytes is cut (the object and its
//! series stay) and counted as a decode error of kind `label_value_too_long`. The info
//! series is one per object of an allowlisted resource, and is not counted against the
//! series bounds: it can never crowd out a condition series.

use std::collections::BTreeMap;

use crate::resource::ResourceSpec;

/// Keys (labels and annotations together) copied per resource, hence per object: a
/// routing key or three is the use; 16 leaves room and keeps an info series small.
pub const MAX_KEYS: usize = 16;

/// Longest value copied, in bytes: a label value is at most 63 characters, an annotation
/// up to 256 KiB; a routing value is short, and a long one must not become a huge label.
pub const MAX_VALUE_LEN: usize = 128;

/// What is copied from one resource's objects: (metadata key, label name), sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowlist {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

impl Allowlist {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// The info series' labels of an object: (label name, value) for every allowlisted key
    /// the object has, sorted by name, values cut at [`MAX_VALUE_LEN`]; and how many were
    /// cut.
    pub fn copy(
        &self,
        labels: Option<&BTreeMap<String, String>>,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> (Vec<(String, String)>, usize) {
        let mut out = Vec::new();
        let mut cut = 0;
        for (keys, from) in [(&self.labels, labels), (&self.annotations, annotations)] {
            let Some(from) = from else { continue };
            for (key, name) in keys {
                if let Some(value) = from.get(key) {
                    let (value, was_cut) = cut_value(value);
                    cut += usize::from(was_cut);
                    out.push((name.clone(), value));
                }
            }
        }
        out.sort();
        (out, cut)
    }
}

/// `value` cut to at most [`MAX_VALUE_LEN`] bytes at a character boundary.
fn cut_value(value: &str) -> (String, bool) {
    if value.len() <= MAX_VALUE_LEN {
        return (value.to_owned(), false);
    }
    let mut at = MAX_VALUE_LEN;
    while !value.is_char_boundary(at) {
        at -= 1;
    }
    (value[..at].to_owned(), true)
}

/// One flag value: `RESOURCE=[key1,key2]` entries, several separated by commas outside the
/// brackets (kube-state-metrics' syntax: `seinodes=[team,chain],seinetworks=[team]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistArg(pub Vec<(ResourceSpec, Vec<String>)>);

impl AllowlistArg {
    fn parse(flag: &str, text: &str) -> Result<AllowlistArg, String> {
        let hint =
            "write RESOURCE=[key1,key2] (several: seinodes=[team,chain],seinetworks=[team]) \
                    with RESOURCE as --resource spells it";
        let mut entries = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let Some((resource, after)) = rest.split_once("=[") else {
                return Err(format!("{flag} {text:?}: no =[ ... ]; {hint}"));
            };
            let Some((keys, after)) = after.split_once(']') else {
                return Err(format!("{flag} {text:?}: no closing ]; {hint}"));
            };
            let resource = ResourceSpec::parse(resource.trim())
                .map_err(|e| format!("{flag} {text:?}: {}", e.trim_start_matches("--resource ")))?;
            let mut list = Vec::new();
            for key in keys.split(',').map(str::trim) {
                if key == "*" {
                    return Err(format!(
                        "{flag} {text:?}: * is not supported: it would copy every label of \
                         every object (unbounded series); name the keys"
                    ));
                }
                if !is_metadata_key(key) {
                    return Err(format!(
                        "{flag} {text:?}: {key:?} is not a label or annotation key; {hint}"
                    ));
                }
                list.push(key.to_owned());
            }
            entries.push((resource, list));
            rest = after.trim_start();
            if let Some(next) = rest.strip_prefix(',') {
                rest = next.trim_start();
                if rest.is_empty() {
                    return Err(format!("{flag} {text:?}: a trailing comma; {hint}"));
                }
            } else if !rest.is_empty() {
                return Err(format!("{flag} {text:?}: {rest:?} after ]; {hint}"));
            }
        }
        if entries.is_empty() {
            return Err(format!("{flag} {text:?}: empty; {hint}"));
        }
        Ok(AllowlistArg(entries))
    }

    /// clap's value parser for `--metric-labels-allowlist`.
    pub fn parse_labels(text: &str) -> Result<AllowlistArg, String> {
        Self::parse("--metric-labels-allowlist", text)
    }

    /// clap's value parser for `--metric-annotations-allowlist`.
    pub fn parse_annotations(text: &str) -> Result<AllowlistArg, String> {
        Self::parse("--metric-annotations-allowlist", text)
    }
}

/// The allowlists of every watched resource (indexed by
/// [`crate::resource::ResourceId`]); empty when none is given.
pub fn allowlists(
    resources: &[ResourceSpec],
    labels: &[AllowlistArg],
    annotations: &[AllowlistArg],
) -> Result<Vec<Allowlist>, String> {
    let mut lists = vec![Allowlist::default(); resources.len()];
    for (flag, args, prefix) in [
        ("--metric-labels-allowlist", labels, "label_"),
        ("--metric-annotations-allowlist", annotations, "annotation_"),
    ] {
        for (resource, keys) in args.iter().flat_map(|a| &a.0) {
            let Some(at) = resources
                .iter()
                .position(|r| r.group == resource.group && r.plural == resource.plural)
            else {
                return Err(format!(
                    "{flag} {}: not a watched resource; name one of {} (or add it with --resource)",
                    resource.label(),
                    resources
                        .iter()
                        .map(|r| r.label())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let list = &mut lists[at];
            for key in keys {
                let name = format!("{prefix}{}", sanitize(key));
                let same_key = |(k, _): &(String, String)| k == key;
                let target = if prefix == "label_" {
                    &mut list.labels
                } else {
                    &mut list.annotations
                };
                if target.iter().any(same_key) {
                    continue;
                }
                target.push((key.clone(), name));
            }
            let all: Vec<&(String, String)> = list.labels.iter().chain(&list.annotations).collect();
            if all.len() > MAX_KEYS {
                return Err(format!(
                    "{flag}: more than {MAX_KEYS} keys for {} (labels and annotations together); \
                     copy only the keys rules and routes join on",
                    resource.label()
                ));
            }
            for (i, (ka, na)) in all.iter().enumerate() {
                if let Some((kb, _)) = all[i + 1..].iter().find(|(_, nb)| nb == na) {
                    return Err(format!(
                        "{flag}: {ka:?} and {kb:?} of {} both become the label {na}; keep one \
                         of them",
                        resource.label()
                    ));
                }
            }
        }
    }
    for list in &mut lists {
        list.labels.sort();
        list.annotations.sort();
    }
    if lists.iter().all(Allowlist::is_empty) {
        lists.clear();
    }
    Ok(lists)
}

/// `app.kubernetes.io/team` -> `app_kubernetes_io_team`, as kube-state-metrics sanitizes
/// label names: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A label or annotation key: `[prefix/]name`, the name at most 63 characters of
/// `[A-Za-z0-9._-]` starting and ending alphanumeric, the prefix a DNS subdomain.
fn is_metadata_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let part = |s: &str, max: usize, extra: &[u8]| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= max
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    part(name, 63, b"._-")
        && prefix.is_none_or(|p| part(p, 253, b".-") && p.bytes().all(|c| !c.is_ascii_uppercase()))
}

/// Start-up lines: what is copied from which resource.
pub fn start_up_lines(resources: &[ResourceSpec], lists: &[Allowlist]) -> Vec<String> {
    resources
        .iter()
        .zip(lists)
        .filter(|(_, l)| !l.is_empty())
        .map(|(spec, l)| {
            let names: Vec<String> = l
                .labels
                .iter()
                .chain(&l.annotations)
                .map(|(k, n)| format!("{k} as {n}"))
                .collect();
            format!(
                "{}: copying onto its <family>_labels info series: {}",
                spec.label(),
                names.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> AllowlistArg {
        AllowlistArg::parse_labels(text).unwrap()
    }

    #[test]
    fn parses_the_kube_state_metrics_syntax() {
        let a = labels("seinodes=[team,chain],seinetworks.sei.io=[app.kubernetes.io/team]");
        assert_eq!(a.0.len(), 2);
        assert_eq!(a.0[0].0, ResourceSpec::parse("seinodes").unwrap());
        assert_eq!(a.0[0].1, ["team", "chain"]);
        assert_eq!(a.0[1].1, ["app.kubernetes.io/team"]);
    }

    #[test]
    fn bad_syntax_is_one_line_naming_the_flag_and_what_to_write() {
        for bad in [
            "seinodes",
            "seinodes=team",
            "seinodes=[team",
            "seinodes=[*]",
            "seinodes=[team],",
            "seinodes=[team]x",
            "seinodes=[bad key]",
            "seinodes=[]",
            "pods=[team]",
            "",
        ] {
            let err = AllowlistArg::parse_labels(bad).unwrap_err();
            assert!(err.starts_with("--metric-labels-allowlist"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(AllowlistArg::parse_labels("seinodes=[*]")
            .unwrap_err()
            .contains("* is not supported"));
    }

    #[test]
    fn allowlists_are_sanitized_bounded_and_collisions_refused() {
        let resources = ResourceSpec::defaults();
        let lists = allowlists(
            &resources,
            &[labels("seinodes=[team,app.kubernetes.io/part-of]")],
            &[AllowlistArg::parse_annotations("seinodes=[team]").unwrap()],
        )
        .unwrap();
        assert_eq!(
            lists[0].labels,
            [
                (
                    "app.kubernetes.io/part-of".into(),
                    "label_app_kubernetes_io_part_of".into()
                ),
                ("team".into(), "label_team".into())
            ]
        );
        assert_eq!(
            lists[0].annotations,
            [("team".into(), "annotation_team".into())]
        );
        assert!(lists[1].is_empty());
        let err = allowlists(&resources, &[labels("seinodes=[a.b,a_b]")], &[]).unwrap_err();
        assert!(err.contains("both become the label label_a_b"), "{err}");
        let many = format!(
            "seinodes=[{}]",
            (0..=MAX_KEYS)
                .map(|i| format!("k{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let err = allowlists(&resources, &[labels(&many)], &[]).unwrap_err();
        assert!(err.contains("more than 16 keys"), "{err}");
        let err =
            allowlists(&resources, &[labels("widgets.example.test=[team]")], &[]).unwrap_err();
        assert!(err.contains("not a watched resource"), "{err}");
        assert!(allowlists(&resources, &[], &[]).unwrap().is_empty());
    }

    #[test]
    fn copy_takes_only_allowlisted_keys_and_cuts_long_values() {
        let list = allowlists(
            &ResourceSpec::defaults(),
            &[labels("seinodes=[team,chain]")],
            &[AllowlistArg::parse_annotations("seinodes=[note]").unwrap()],
        )
        .unwrap()
        .remove(0);
        let object_labels: BTreeMap<String, String> = [("team", "infra"), ("other", "not copied")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let long = "é".repeat(100);
        let object_annotations: BTreeMap<String, String> =
            [("note".to_owned(), long.clone())].into();
        let (copied, cut) = list.copy(Some(&object_labels), Some(&object_annotations));
        assert_eq!(cut, 1);
        assert_eq!(copied.len(), 2);
        assert_eq!(copied[0].0, "annotation_note");
        assert_eq!(
            copied[0].1.len(),
            MAX_VALUE_LEN,
            "cut at a character boundary"
        );
        assert!(long.starts_with(&copied[0].1));
        assert_eq!(copied[1], ("label_team".into(), "infra".into()));
        assert_eq!(list.copy(None, None), (vec![], 0));
    }
}
