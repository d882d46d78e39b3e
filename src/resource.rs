//! Which custom resources are watched, and how each is named: the one place that knows a
//! resource's identity (group, version, plural, kind, scope) and its metric family.
//!
//! ```text
//!   --resource SPEC ──parse──▶ ResourceSpec ──resolve (static table, or API discovery)──▶ WatchedResource
//!   (default: the four sei.io kinds)          │                                          │ family: lower-case kind
//!                                             └─ not served yet: retried by the watch     └▶ watch, index, export, check
//! ```
//!
//! The four sei.io/v1alpha1 kinds are known statically, so they need no discovery round-trip
//! and their watches start (and report a missing CRD) at once. Any other resource is resolved
//! by discovery: its version (the group's preferred one unless given), kind and scope.
//!
//! The metric family of a resource is its kind in lower case (`SeiNode` -> `seinode`), as
//! kube-state-metrics and upstream's guide name `..._status_condition`. Two groups may share
//! a kind name (`widgets.a.example` and `widgets.b.example`, both `Widget`): their series would
//! mix in one family, so the second to resolve is refused with one line that says to give
//! one of them its own family (`--resource widgets.b.example=b_widget`).

use std::fmt;

use kube::api::ApiResource;
use kube::discovery::{ApiCapabilities, Scope as ApiScope};
use kube::Client;

/// The API group of sei-k8s-controller's resources.
pub const SEI_GROUP: &str = "sei.io";
/// The version every sei.io kind is served at (sei-k8s-controller 2d670ad).
pub const SEI_VERSION: &str = "v1alpha1";

/// sei.io kinds known without discovery: (plural, kind). All are namespaced.
pub const SEI_KINDS: [(&str, &str); 4] = [
    ("seinodes", "SeiNode"),
    ("seinetworks", "SeiNetwork"),
    ("seinodetasks", "SeiNodeTask"),
    ("seinodetaskworkflows", "SeiNodeTaskWorkflow"),
];

/// Position of a resource in the watched list: a small copyable key for the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub u16);

/// A resource as the user named it, before discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    pub group: String,
    /// `None`: the group's preferred version.
    pub version: Option<String>,
    pub plural: String,
    /// `None`: the lower-case kind.
    pub family: Option<String>,
}

impl ResourceSpec {
    /// The `resource` label of self-metrics and logs: `plural.group`.
    pub fn label(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// The four sei.io kinds: the default when no `--resource` is given.
    pub fn defaults() -> Vec<ResourceSpec> {
        SEI_KINDS
            .iter()
            .map(|(plural, _)| ResourceSpec {
                group: SEI_GROUP.into(),
                version: Some(SEI_VERSION.into()),
                plural: (*plural).into(),
                family: None,
            })
            .collect()
    }

    /// Parses `plural.group`, `group/version/plural` or a bare sei.io plural (`seinodes`),
    /// each optionally followed by `=family`.
    pub fn parse(text: &str) -> Result<ResourceSpec, String> {
        let hint = "write plural.group (seinodes.sei.io), group/version/plural \
                    (sei.io/v1alpha1/seinodes), optionally =family";
        let (name, family) = match text.trim().split_once('=') {
            Some((name, family)) => (name, Some(family.to_owned())),
            None => (text.trim(), None),
        };
        if let Some(family) = &family {
            if !is_family_name(family) {
                return Err(format!(
                    "--resource {text:?}: family {family:?} must match [a-z_][a-z0-9_]* (it prefixes metric names)"
                ));
            }
        }
        let parts: Vec<&str> = name.split('/').collect();
        let (group, version, plural) = match parts.as_slice() {
            [group, version, plural] => (*group, Some((*version).to_owned()), *plural),
            [dotted] => match dotted.split_once('.') {
                Some((plural, group)) => (group, None, plural),
                None if SEI_KINDS.iter().any(|(p, _)| p == dotted) => {
                    (SEI_GROUP, Some(SEI_VERSION.to_owned()), *dotted)
                }
                None => return Err(format!("--resource {text:?}: no API group; {hint}")),
            },
            _ => return Err(format!("--resource {text:?}: {hint}")),
        };
        let dns = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        if !dns(group) || !dns(plural) || plural.contains('.') {
            return Err(format!(
                "--resource {text:?}: group and plural must be lower-case DNS names \
                 (custom resources only: the core group has no conditions to watch); {hint}"
            ));
        }
        if matches!(&version, Some(v) if !dns(v) || v.contains('.')) {
            return Err(format!("--resource {text:?}: bad version; {hint}"));
        }
        // A sei.io kind named without a version is known statically at v1alpha1.
        let version = version.or_else(|| {
            (group == SEI_GROUP && SEI_KINDS.iter().any(|(p, _)| *p == plural))
                .then(|| SEI_VERSION.to_owned())
        });
        Ok(ResourceSpec {
            group: group.to_owned(),
            version,
            plural: plural.to_owned(),
            family,
        })
    }

    /// The resource without discovery, when it is a known sei.io kind.
    pub fn known(&self) -> Option<WatchedResource> {
        if self.group != SEI_GROUP || self.version.as_deref() != Some(SEI_VERSION) {
            return None;
        }
        let (plural, kind) = SEI_KINDS.iter().find(|(p, _)| *p == self.plural)?;
        Some(WatchedResource::new(
            self,
            ApiResource {
                group: SEI_GROUP.into(),
                version: SEI_VERSION.into(),
                api_version: format!("{SEI_GROUP}/{SEI_VERSION}"),
                kind: (*kind).into(),
                plural: (*plural).into(),
            },
            true,
        ))
    }

    /// Resolves the resource: statically for sei.io kinds, else by discovery. `Ok(None)`:
    /// the API server does not serve it (yet).
    pub async fn resolve(&self, client: &Client) -> Result<Option<WatchedResource>, kube::Error> {
        if let Some(known) = self.known() {
            return Ok(Some(known));
        }
        let group = match &self.version {
            Some(version) => {
                let gv = kube::core::GroupVersion::gv(&self.group, version);
                kube::discovery::pinned_group(client, &gv).await
            }
            None => kube::discovery::group(client, &self.group).await,
        };
        let group = match group {
            Ok(group) => group,
            Err(kube::Error::Discovery(_)) => return Ok(None),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        let version = self
            .version
            .clone()
            .unwrap_or_else(|| group.preferred_version_or_latest().to_owned());
        Ok(group
            .versioned_resources(&version)
            .into_iter()
            .find(|(r, _)| r.plural == self.plural)
            .map(|(resource, caps): (ApiResource, ApiCapabilities)| {
                WatchedResource::new(self, resource, caps.scope == ApiScope::Namespaced)
            }))
    }
}

impl fmt::Display for ResourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A resolved resource: what the watch needs to build its `Api`, and the names its series
/// are exported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedResource {
    pub api: ApiResource,
    /// Namespaced (watched per `--namespace`) or cluster-scoped (watched once).
    pub namespaced: bool,
    /// `plural.group`, the `resource` label of self-metrics.
    pub label: String,
    /// The metric family prefix, e.g. `seinode`.
    pub family: String,
    /// `<family>_status_condition`
    pub condition_metric: String,
    /// `<family>_status_condition_last_transition_timestamp_seconds`
    pub since_metric: String,
    /// `<family>_status_condition_outdated`
    pub outdated_metric: String,
    /// `<family>_status_conditions_truncated`
    pub truncated_metric: String,
    /// `<family>_labels`, the info series of allowlisted labels (`crate::labels`)
    pub labels_metric: String,
    /// Whether this is the sei.io SeiNode, whose seed metrics (sidecar TLS) are also exported.
    pub is_seinode: bool,
}

impl WatchedResource {
    pub fn new(spec: &ResourceSpec, api: ApiResource, namespaced: bool) -> Self {
        let family = spec
            .family
            .clone()
            .unwrap_or_else(|| family_of_kind(&api.kind));
        Self {
            namespaced,
            label: spec.label(),
            condition_metric: format!("{family}_status_condition"),
            since_metric: format!("{family}_status_condition_last_transition_timestamp_seconds"),
            outdated_metric: format!("{family}_status_condition_outdated"),
            truncated_metric: format!("{family}_status_conditions_truncated"),
            labels_metric: format!("{family}_labels"),
            is_seinode: api.group == SEI_GROUP && api.kind == "SeiNode",
            family,
            api,
        }
    }
}

/// `SeiNodeTask` -> `seinodetask`; anything outside `[a-z0-9_]` becomes `_`.
pub fn family_of_kind(kind: &str) -> String {
    let mut family: String = kind
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if family.starts_with(|c: char| c.is_ascii_digit()) {
        family.insert(0, '_');
    }
    family
}

fn is_family_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Checks that no two specs name the same resource, and that no two given families clash.
pub fn check_specs(specs: &[ResourceSpec]) -> Result<(), String> {
    for (i, a) in specs.iter().enumerate() {
        for b in &specs[i + 1..] {
            if a.group == b.group && a.plural == b.plural {
                return Err(format!(
                    "--resource {} is given twice; name each resource once",
                    a.label()
                ));
            }
            if a.family.is_some() && a.family == b.family {
                return Err(format!(
                    "--resource {} and {} both use family {:?}; give each its own",
                    a.label(),
                    b.label(),
                    a.family.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    if specs.len() > u16::MAX as usize {
        return Err("too many --resource flags".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        group: &str,
        version: Option<&str>,
        plural: &str,
        family: Option<&str>,
    ) -> ResourceSpec {
        ResourceSpec {
            group: group.into(),
            version: version.map(Into::into),
            plural: plural.into(),
            family: family.map(Into::into),
        }
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            (
                "seinodes.sei.io",
                spec("sei.io", Some("v1alpha1"), "seinodes", None),
            ),
            (
                "seinodes",
                spec("sei.io", Some("v1alpha1"), "seinodes", None),
            ),
            (
                "certificates.cert-manager.io",
                spec("cert-manager.io", None, "certificates", None),
            ),
            (
                "cert-manager.io/v1/certificates",
                spec("cert-manager.io", Some("v1"), "certificates", None),
            ),
            (
                "widgets.b.example=b_widget",
                spec("b.example", None, "widgets", Some("b_widget")),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ResourceSpec::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        for bad in [
            "pods",
            "Widgets.example",
            "a/b",
            "a/b/c/d",
            "widgets.example=Bad-Family",
            "widgets.example=",
            "",
            "x.example/v1/y.z",
        ] {
            let err = ResourceSpec::parse(bad).unwrap_err();
            assert!(err.starts_with("--resource"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn sei_kinds_resolve_without_discovery() {
        let specs = ResourceSpec::defaults();
        let resolved: Vec<WatchedResource> = specs.iter().map(|s| s.known().unwrap()).collect();
        let families: Vec<&str> = resolved.iter().map(|r| r.family.as_str()).collect();
        assert_eq!(
            families,
            [
                "seinode",
                "seinetwork",
                "seinodetask",
                "seinodetaskworkflow"
            ]
        );
        assert_eq!(resolved[0].condition_metric, "seinode_status_condition");
        assert_eq!(
            resolved[2].since_metric,
            "seinodetask_status_condition_last_transition_timestamp_seconds"
        );
        assert!(resolved[0].is_seinode && !resolved[1].is_seinode);
        assert!(resolved.iter().all(|r| r.namespaced));
        assert_eq!(resolved[3].label, "seinodetaskworkflows.sei.io");
        assert!(spec("example.test", None, "widgets", None)
            .known()
            .is_none());
    }

    #[test]
    fn family_names() {
        assert_eq!(family_of_kind("SeiNodeTaskWorkflow"), "seinodetaskworkflow");
        assert_eq!(family_of_kind("My-Kind"), "my_kind");
        assert_eq!(family_of_kind("9Lives"), "_9lives");
    }

    #[test]
    fn duplicate_specs_and_families_are_refused() {
        let a = ResourceSpec::parse("widgets.a.example=w").unwrap();
        let b = ResourceSpec::parse("gadgets.b.example=w").unwrap();
        assert!(check_specs(&[a.clone(), b]).unwrap_err().contains("family"));
        assert!(check_specs(&[a.clone(), a.clone()])
            .unwrap_err()
            .contains("twice"));
        assert!(check_specs(&ResourceSpec::defaults()).is_ok());
    }
}
