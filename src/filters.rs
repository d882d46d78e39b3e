//! What is left out on purpose (issue 21, item 4): condition types per resource (an allow
//! list or a deny list) and namespaces (a deny list). Parsed from flags, checked against the
//! watched resources at start, said at start-up (one line per filter, a warning for a
//! paging type left out) and counted by self-metrics: never silent.
//!
//! ```text
//!   --condition-types-allow RESOURCE=T1,T2 ─┐
//!   --condition-types-deny  RESOURCE=T1,T2 ─┼─parse─▶ Filters { types[resource id], namespaces_denied }
//!   --namespace-deny NS (repeatable)       ─┘            │
//!        watch: field selector metadata.namespace!=NS ◀──┤ (and skipped in the handler)
//!        decode: a filtered type is never decoded,   ◀──┘  never indexed, never exported,
//!                counted per object (filtered_conditions)  and `check` does the same
//! ```
//!
//! RESOURCE is spelled as `--resource` spells it (`seinodes.sei.io`, `seinodes`,
//! `group/version/plural`) and must be a watched resource. A resource has an allow list or
//! a deny list, not both. Type filters apply to `status.conditions` entries (the
//! `<family>_status_condition*` series); the seed's `seinode_sidecar_tls_secret_*` series
//! are not filtered.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::resource::ResourceSpec;

/// The condition types the shipped rules page on (deploy/prometheus/sei-conditions.rules.yaml,
/// `severity: page`); leaving one out is warned about loudly at start-up. A unit test checks
/// this list against the rules file.
pub const PAGED_TYPES: [(&str, &str); 3] = [
    ("seinodes", "SigningKeyReady"),
    ("seinodes", "NodeKeyReady"),
    ("seinodes", "OperatorKeyringReady"),
];

/// Types named by one filter flag: a bound that no real list reaches (a SeiNode has at most
/// 14 condition types upstream), so that a flag cannot grow without limit.
pub const MAX_TYPES_PER_FILTER: usize = 256;

/// One `--condition-types-allow` or `--condition-types-deny` value, before it is matched to
/// a watched resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypesArg {
    pub resource: ResourceSpec,
    pub types: BTreeSet<String>,
}

impl TypesArg {
    /// Parses `RESOURCE=Type1,Type2`; `flag` names the flag in the error.
    fn parse(flag: &str, text: &str) -> Result<TypesArg, String> {
        let hint = "write RESOURCE=Type1,Type2 with RESOURCE as --resource spells it, e.g. \
                    seinodes.sei.io=Ready,SigningKeyReady";
        let Some((resource, types)) = text.split_once('=') else {
            return Err(format!("{flag} {text:?}: no '='; {hint}"));
        };
        let resource = ResourceSpec::parse(resource)
            .map_err(|e| format!("{flag} {text:?}: {}", e.trim_start_matches("--resource ")))?;
        let mut set = BTreeSet::new();
        for t in types.split(',').map(str::trim) {
            if !crate::conditions::is_valid_type(t) {
                return Err(format!(
                    "{flag} {text:?}: {t:?} is not a condition type name; {hint}"
                ));
            }
            set.insert(t.to_owned());
        }
        if set.len() > MAX_TYPES_PER_FILTER {
            return Err(format!(
                "{flag} {text:?}: more than {MAX_TYPES_PER_FILTER} types; name fewer"
            ));
        }
        Ok(TypesArg {
            resource,
            types: set,
        })
    }

    /// clap's value parser for `--condition-types-allow`.
    pub fn parse_allow(text: &str) -> Result<TypesArg, String> {
        Self::parse("--condition-types-allow", text)
    }

    /// clap's value parser for `--condition-types-deny`.
    pub fn parse_deny(text: &str) -> Result<TypesArg, String> {
        Self::parse("--condition-types-deny", text)
    }
}

/// The type filter of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TypeFilter {
    /// Every type is exported (no flag for this resource).
    #[default]
    All,
    /// Only these types are exported.
    Allow(BTreeSet<String>),
    /// These types are not exported.
    Deny(BTreeSet<String>),
}

impl TypeFilter {
    /// Whether a condition of this type is exported.
    pub fn keeps(&self, type_: &str) -> bool {
        match self {
            TypeFilter::All => true,
            TypeFilter::Allow(types) => types.contains(type_),
            TypeFilter::Deny(types) => !types.contains(type_),
        }
    }
}

/// Every filter, the type filters in the order of the watched resources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    /// Indexed by [`crate::resource::ResourceId`]; empty means no type filter anywhere.
    pub types: Vec<TypeFilter>,
    /// Namespaces not watched (only when all namespaces are).
    pub namespaces_denied: BTreeSet<String>,
}

impl Filters {
    /// Matches the flags to the watched `resources`: a filter for a resource that is not
    /// watched, a resource with both lists, or a namespace deny list beside `-n` is a
    /// one-line error that says what to do.
    pub fn new(
        resources: &[ResourceSpec],
        allow: &[TypesArg],
        deny: &[TypesArg],
        namespaces_denied: &[String],
        namespaces: &[String],
    ) -> Result<Filters, String> {
        let mut types = vec![TypeFilter::All; resources.len()];
        for (flag, args, is_allow) in [
            ("--condition-types-allow", allow, true),
            ("--condition-types-deny", deny, false),
        ] {
            for arg in args {
                let Some(at) = resources
                    .iter()
                    .position(|r| r.group == arg.resource.group && r.plural == arg.resource.plural)
                else {
                    return Err(format!(
                        "{flag} {}: not a watched resource; name one of {} (or add it with --resource)",
                        arg.resource.label(),
                        resources.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ")
                    ));
                };
                let merged = match (std::mem::take(&mut types[at]), is_allow) {
                    (TypeFilter::All, true) => TypeFilter::Allow(arg.types.clone()),
                    (TypeFilter::All, false) => TypeFilter::Deny(arg.types.clone()),
                    (TypeFilter::Allow(mut t), true) => {
                        t.extend(arg.types.iter().cloned());
                        TypeFilter::Allow(t)
                    }
                    (TypeFilter::Deny(mut t), false) => {
                        t.extend(arg.types.iter().cloned());
                        TypeFilter::Deny(t)
                    }
                    _ => {
                        return Err(format!(
                            "{} has both --condition-types-allow and --condition-types-deny; \
                             give one of them",
                            arg.resource.label()
                        ))
                    }
                };
                types[at] = merged;
            }
        }
        if types.iter().all(|t| *t == TypeFilter::All) {
            types.clear();
        }
        let mut denied = BTreeSet::new();
        for ns in namespaces_denied {
            let ns = ns.trim();
            if !is_namespace_name(ns) {
                return Err(format!(
                    "--namespace-deny {ns:?}: not a namespace name (lower-case letters, digits \
                     and '-', at most 63)"
                ));
            }
            denied.insert(ns.to_owned());
        }
        if !denied.is_empty() && !namespaces.is_empty() {
            return Err(
                "--namespace-deny and -n/--namespace are both given: -n already lists the only \
                 namespaces watched; drop the namespaces you do not want from -n instead"
                    .into(),
            );
        }
        Ok(Filters {
            types,
            namespaces_denied: denied,
        })
    }

    /// The type filter of the resource at `id` (watch order).
    pub fn types_of(&self, id: usize) -> &TypeFilter {
        static ALL: TypeFilter = TypeFilter::All;
        self.types.get(id).unwrap_or(&ALL)
    }

    /// Whether objects of this namespace are watched.
    pub fn keeps_namespace(&self, namespace: &str) -> bool {
        !self.namespaces_denied.contains(namespace)
    }

    /// The server-side field selector that leaves the denied namespaces out
    /// (`metadata.namespace!=a,metadata.namespace!=b`), if any.
    pub fn field_selector(&self) -> Option<String> {
        (!self.namespaces_denied.is_empty()).then(|| {
            self.namespaces_denied
                .iter()
                .map(|ns| format!("metadata.namespace!={ns}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// What the start-up log says: one line per filter (what will not be exported), and
    /// whether it leaves out a type the shipped rules page on (logged as a warning).
    pub fn start_up_lines(&self, resources: &[ResourceSpec]) -> Vec<(bool, String)> {
        let mut lines = Vec::new();
        for (spec, filter) in resources.iter().zip(&self.types) {
            let (what, types) = match filter {
                TypeFilter::All => continue,
                TypeFilter::Allow(t) => ("only these condition types are exported", t),
                TypeFilter::Deny(t) => ("these condition types are not exported", t),
            };
            let mut line = format!(
                "{}: {what}: {}",
                spec.label(),
                types.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            let mut pages = false;
            for (plural, paged) in PAGED_TYPES {
                if spec.group == crate::resource::SEI_GROUP
                    && spec.plural == plural
                    && !filter.keeps(paged)
                {
                    pages = true;
                    let _ = write!(
                        line,
                        "; WARNING: {paged} is left out, and the shipped rules PAGE on it: \
                         its page can no longer fire"
                    );
                }
            }
            lines.push((pages, line));
        }
        if !self.namespaces_denied.is_empty() {
            lines.push((
                false,
                format!(
                    "namespaces not watched (--namespace-deny): {}; none of their objects is \
                     exported or checked",
                    self.namespaces_denied
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        lines
    }

    /// (resource position, filter name, entries) of every configured filter, for the
    /// `sei_condition_watcher_filters` self-metric; namespaces under position `None`.
    pub fn counts(&self) -> Vec<(Option<usize>, &'static str, u64)> {
        let mut out: Vec<(Option<usize>, &'static str, u64)> = self
            .types
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                TypeFilter::All => None,
                TypeFilter::Allow(t) => Some((Some(i), "condition_types_allow", t.len() as u64)),
                TypeFilter::Deny(t) => Some((Some(i), "condition_types_deny", t.len() as u64)),
            })
            .collect();
        if !self.namespaces_denied.is_empty() {
            out.push((None, "namespace_deny", self.namespaces_denied.len() as u64));
        }
        out
    }
}

/// A Kubernetes namespace name: an RFC 1123 label.
fn is_namespace_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(text: &str) -> TypesArg {
        TypesArg::parse_allow(text).unwrap()
    }

    fn deny(text: &str) -> TypesArg {
        TypesArg::parse_deny(text).unwrap()
    }

    #[test]
    fn parses_resource_and_types() {
        let a = allow("seinodes.sei.io=Ready, SigningKeyReady");
        assert_eq!(a.resource, ResourceSpec::parse("seinodes").unwrap());
        assert_eq!(
            a.types.iter().map(String::as_str).collect::<Vec<_>>(),
            ["Ready", "SigningKeyReady"]
        );
        let d = deny("example.test/v1/widgets=Paused");
        assert_eq!(d.resource.plural, "widgets");
    }

    #[test]
    fn bad_syntax_is_one_line_naming_the_flag_and_what_to_write() {
        for (parse, flag, bad) in [
            (
                TypesArg::parse_allow as fn(&str) -> Result<TypesArg, String>,
                "--condition-types-allow",
                "seinodes",
            ),
            (
                TypesArg::parse_allow,
                "--condition-types-allow",
                "seinodes=",
            ),
            (TypesArg::parse_deny, "--condition-types-deny", "pods=Ready"),
            (
                TypesArg::parse_deny,
                "--condition-types-deny",
                "seinodes=a b",
            ),
            (
                TypesArg::parse_deny,
                "--condition-types-deny",
                "seinodes=Ready,,X",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(flag), "{bad}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let many = format!(
            "seinodes={}",
            (0..=MAX_TYPES_PER_FILTER)
                .map(|i| format!("T{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(TypesArg::parse_deny(&many).unwrap_err().contains("fewer"));
    }

    #[test]
    fn filters_match_watched_resources_and_refuse_contradictions() {
        let resources = ResourceSpec::defaults();
        let f = Filters::new(
            &resources,
            &[allow("seinodetasks=Failed")],
            &[deny("seinodes=Paused"), deny("seinodes.sei.io=Adopted")],
            &[],
            &[],
        )
        .unwrap();
        assert!(f.types_of(0).keeps("Ready") && !f.types_of(0).keeps("Paused"));
        assert!(!f.types_of(0).keeps("Adopted"), "two deny flags add up");
        assert!(f.types_of(1).keeps("Anything"), "no filter");
        assert!(f.types_of(2).keeps("Failed") && !f.types_of(2).keeps("Complete"));
        let err = Filters::new(
            &resources,
            &[allow("seinodes=Ready")],
            &[deny("seinodes=Paused")],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(err.contains("give one of them"), "{err}");
        let err = Filters::new(
            &resources,
            &[allow("widgets.example.test=Ready")],
            &[],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(err.contains("not a watched resource"), "{err}");
        let err = Filters::new(
            &resources,
            &[],
            &[],
            &["kube-system".into()],
            &["sei".into()],
        )
        .unwrap_err();
        assert!(err.starts_with("--namespace-deny and -n"), "{err}");
        let err = Filters::new(&resources, &[], &[], &["Bad_NS".into()], &[]).unwrap_err();
        assert!(err.starts_with("--namespace-deny \"Bad_NS\""), "{err}");
        let none = Filters::new(&resources, &[], &[], &[], &[]).unwrap();
        assert_eq!(none, Filters::default());
        assert!(none.start_up_lines(&resources).is_empty());
        assert_eq!(none.field_selector(), None);
    }

    #[test]
    fn every_filter_is_said_at_start_up_and_a_paging_type_loudly() {
        let resources = ResourceSpec::defaults();
        let f = Filters::new(
            &resources,
            &[],
            &[
                deny("seinodes=SigningKeyReady,Paused"),
                deny("seinetworks=Paused"),
            ],
            &["scratch".into(), "kube-system".into()],
            &[],
        )
        .unwrap();
        let lines = f.start_up_lines(&resources);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].0, "denying SigningKeyReady warns");
        assert!(lines[0].1.contains("PAGE on it"), "{}", lines[0].1);
        assert!(!lines[1].0, "{}", lines[1].1);
        assert!(
            lines[2].1.contains("kube-system, scratch"),
            "{}",
            lines[2].1
        );
        assert_eq!(
            f.field_selector().as_deref(),
            Some("metadata.namespace!=kube-system,metadata.namespace!=scratch")
        );
        assert!(!f.keeps_namespace("scratch") && f.keeps_namespace("sei"));
        assert_eq!(
            f.counts(),
            vec![
                (Some(0), "condition_types_deny", 2),
                (Some(1), "condition_types_deny", 1),
                (None, "namespace_deny", 2)
            ]
        );
        // An allow list that leaves a paging type out warns as well.
        let f = Filters::new(&resources, &[allow("seinodes=Ready")], &[], &[], &[]).unwrap();
        let lines = f.start_up_lines(&resources);
        assert!(lines[0].0);
        assert_eq!(lines[0].1.matches("WARNING").count(), 3, "{}", lines[0].1);
    }

    /// PAGED_TYPES is every condition type the shipped rules page on.
    #[test]
    fn paged_types_are_those_the_shipped_rules_page_on() {
        let rules = include_str!("../deploy/prometheus/sei-conditions.rules.yaml");
        let mut paged = BTreeSet::new();
        for rule in rules.split("- alert: ").skip(1) {
            if !rule.contains("severity: page")
                || !rule.contains("seinode_status_condition{type=\"")
            {
                continue;
            }
            let at = rule.find("seinode_status_condition{type=\"").unwrap() + 31;
            let type_ = &rule[at..at + rule[at..].find('"').unwrap()];
            paged.insert(type_.to_owned());
        }
        let ours: BTreeSet<String> = PAGED_TYPES.iter().map(|(_, t)| t.to_string()).collect();
        assert_eq!(paged, ours);
    }
}
