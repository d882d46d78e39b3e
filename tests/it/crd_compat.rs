//! The sei.io CRDs that the stack, the tests and the demo install (tests/fixtures/) must be
//! upstream's (sei-protocol/sei-k8s-controller, ../shared/fixtures/upstream):
//!
//! - SeiNetwork, SeiNodeTask, SeiNodeTaskWorkflow: verbatim the CRDs at 2d670ad;
//! - SeiNode: verbatim the CRD at 2d670ad, plus exactly two properties of the one-day
//!   sidecar-TLS line (PR #258, 967f153) that the seed's objects use, `spec.sidecar.tls` and
//!   `status.sidecarTLS`, each verbatim as 967f153 has it. So every object valid under
//!   2d670ad is valid under it, and the seed's objects still validate.
//!
//! The comparison is of the parsed YAML (comments and layout do not count). Fails when
//! either side drifts.

use serde_json::Value;

use crate::harness::yaml_file;

const UPSTREAM_2D670AD: &str = "../shared/fixtures/upstream/2d670ad";
const UPSTREAM_967F153_SEINODE: &str = "../shared/fixtures/upstream/sei.io_seinodes.yaml";
const OWN_SEINODE: &str = "tests/fixtures/seinode-crd.yaml";
/// The three other current CRDs, copied verbatim, by their upstream file names.
const VERBATIM: [&str; 3] = [
    "sei.io_seinetworks.yaml",
    "sei.io_seinodetasks.yaml",
    "sei.io_seinodetaskworkflows.yaml",
];
/// Where, inside `spec.versions[v1alpha1].schema.openAPIV3Schema`, the seed's two
/// properties live, and the parent whose `properties` gains them.
const ADDED: [(&str, &str); 2] = [
    ("/properties/spec/properties/sidecar/properties", "tls"),
    ("/properties/status/properties", "sidecarTLS"),
];

fn version_index(crd: &Value) -> usize {
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    versions
        .iter()
        .position(|v| v["name"] == "v1alpha1")
        .expect("v1alpha1 served")
}

fn schema_mut(crd: &mut Value) -> &mut Value {
    let i = version_index(crd);
    &mut crd["spec"]["versions"][i]["schema"]["openAPIV3Schema"]
}

fn schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][version_index(crd)]["schema"]["openAPIV3Schema"]
}

/// The first difference between two JSON values, as a JSON pointer (for a readable failure).
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let path = format!("{at}/{key}");
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) => {
                        if let Some(d) = first_difference(u, v, &path) {
                            return Some(d);
                        }
                    }
                    (u, v) => return Some(format!("{path}: {u:?} vs {v:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

fn assert_same(own: &Value, upstream: &Value, what: &str) {
    if let Some(d) = first_difference(own, upstream, "") {
        panic!("{what}: differs from upstream at {d}");
    }
    assert_eq!(own, upstream, "{what}");
}

#[test]
fn other_three_crds_are_upstream_2d670ad_verbatim() {
    for file in VERBATIM {
        let own = yaml_file(&format!("tests/fixtures/{file}"));
        let upstream = yaml_file(&format!("{UPSTREAM_2D670AD}/{file}"));
        assert_same(&own, &upstream, &format!("tests/fixtures/{file}"));
    }
}

#[test]
fn seinode_crd_is_2d670ad_plus_exactly_the_seeds_two_967f153_properties() {
    let mut own = yaml_file(OWN_SEINODE);
    let current = yaml_file(&format!("{UPSTREAM_2D670AD}/sei.io_seinodes.yaml"));
    let tls_line = yaml_file(UPSTREAM_967F153_SEINODE);
    for (parent, key) in ADDED {
        let pointer = format!("{parent}/{key}");
        assert!(
            schema(&current).pointer(&pointer).is_none(),
            "2d670ad has {pointer} itself: it is no longer an addition"
        );
        let theirs = schema(&tls_line)
            .pointer(&pointer)
            .unwrap_or_else(|| panic!("967f153 has no {pointer}"))
            .clone();
        let properties = schema_mut(&mut own)
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{OWN_SEINODE} has no {parent}"));
        let ours = properties
            .remove(key)
            .unwrap_or_else(|| panic!("{OWN_SEINODE} lacks the seed's {pointer}"));
        assert_same(&ours, &theirs, &format!("{pointer} (as at 967f153)"));
    }
    // With the two seed properties taken out, nothing else differs: not the schema, the
    // printer columns, the names, the scope, the status subresource nor the annotations.
    assert_same(&own, &current, OWN_SEINODE);
}

#[test]
fn the_four_kinds_are_namespaced_v1alpha1_with_a_status_subresource() {
    let crds = [
        (OWN_SEINODE.to_owned(), "SeiNode", "seinodes"),
        (
            format!("tests/fixtures/{}", VERBATIM[0]),
            "SeiNetwork",
            "seinetworks",
        ),
        (
            format!("tests/fixtures/{}", VERBATIM[1]),
            "SeiNodeTask",
            "seinodetasks",
        ),
        (
            format!("tests/fixtures/{}", VERBATIM[2]),
            "SeiNodeTaskWorkflow",
            "seinodetaskworkflows",
        ),
    ];
    let own_seinode = yaml_file(OWN_SEINODE);
    let expected_conditions =
        &schema(&own_seinode)["properties"]["status"]["properties"]["conditions"];
    for (file, kind, plural) in crds {
        let crd = yaml_file(&file);
        assert_eq!(
            crd["metadata"]["name"],
            format!("{plural}.sei.io"),
            "{file}"
        );
        assert_eq!(crd["spec"]["group"], "sei.io", "{file}");
        assert_eq!(crd["spec"]["names"]["kind"], kind, "{file}");
        assert_eq!(crd["spec"]["names"]["plural"], plural, "{file}");
        assert_eq!(crd["spec"]["scope"], "Namespaced", "{file}");
        let version = &crd["spec"]["versions"][version_index(&crd)];
        assert_eq!(version["served"], true, "{file}");
        assert_eq!(version["storage"], true, "{file}");
        assert_eq!(
            version["subresources"]["status"],
            serde_json::json!({}),
            "{file}: status subresource"
        );
        // The condition list the watcher decodes, the same on every kind.
        let conditions = &schema(&crd)["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions, expected_conditions, "{file}: status.conditions");
    }
}

#[test]
fn the_stack_installs_all_four_crds() {
    let run_sh = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stack/run.sh"),
    )
    .unwrap();
    for (file, name) in [
        ("seinode-crd.yaml", "seinodes.sei.io"),
        (VERBATIM[0], "seinetworks.sei.io"),
        (VERBATIM[1], "seinodetasks.sei.io"),
        (VERBATIM[2], "seinodetaskworkflows.sei.io"),
    ] {
        assert!(
            run_sh.contains(&format!("{file}:{name}")),
            "tests/stack/run.sh does not install {file} as {name}"
        );
    }
}

#[test]
fn upstream_condition_schema_is_what_the_decoder_assumes() {
    let mut files = vec![UPSTREAM_967F153_SEINODE.to_owned()];
    files.extend(
        ["sei.io_seinodes.yaml"]
            .into_iter()
            .chain(VERBATIM)
            .map(|f| format!("{UPSTREAM_2D670AD}/{f}")),
    );
    for file in files {
        let upstream = yaml_file(&file);
        let conditions = &schema(&upstream)["properties"]["status"]["properties"]["conditions"];
        let condition = &conditions["items"];
        assert_eq!(
            condition["properties"]["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"]),
            "{file}"
        );
        assert_eq!(
            condition["properties"]["lastTransitionTime"]["format"], "date-time",
            "{file}"
        );
        assert_eq!(
            condition["properties"]["observedGeneration"]["type"], "integer",
            "{file}"
        );
        // The decoder's reason check mirrors this pattern.
        assert_eq!(
            condition["properties"]["reason"]["pattern"],
            "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            "{file}"
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{file}"
        );
    }
}
