//! The project's SeiNode CRD (tests/fixtures/seinode-crd.yaml, installed by the stack and the
//! demo) must stay compatible with upstream's (../shared/fixtures/upstream): same identity,
//! and verbatim the schema of every field the watcher reads. Fails when either drifts.

use serde_json::Value;

fn load(rel: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn version(crd: &Value) -> &Value {
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    versions
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("v1alpha1 served")
}

fn schema<'a>(crd: &'a Value, pointer: &str) -> &'a Value {
    version(crd)["schema"]["openAPIV3Schema"]
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the schema"))
}

#[test]
fn own_crd_matches_upstream_where_the_watcher_reads() {
    let own = load("tests/fixtures/seinode-crd.yaml");
    let upstream = load("../shared/fixtures/upstream/sei.io_seinodes.yaml");
    for field in [
        "/spec/group",
        "/spec/scope",
        "/spec/names/kind",
        "/spec/names/plural",
        "/metadata/name",
    ] {
        assert_eq!(own.pointer(field), upstream.pointer(field), "{field}");
    }
    assert_eq!(
        own.pointer("/spec/group").and_then(Value::as_str),
        Some(seinode_tls_watcher::watch::GROUP)
    );
    assert_eq!(
        own.pointer("/spec/names/plural").and_then(Value::as_str),
        Some(seinode_tls_watcher::watch::PLURAL)
    );
    assert_eq!(
        version(&own)["subresources"],
        version(&upstream)["subresources"],
        "status subresource"
    );
    for pointer in [
        "/properties/spec/properties/sidecar/properties/tls",
        "/properties/status/properties/conditions",
        "/properties/status/properties/sidecarTLS",
    ] {
        assert_eq!(
            schema(&own, pointer),
            schema(&upstream, pointer),
            "{pointer} drifted from upstream"
        );
    }
}

#[test]
fn upstream_condition_schema_is_what_the_decoder_assumes() {
    let upstream = load("../shared/fixtures/upstream/sei.io_seinodes.yaml");
    let condition = schema(&upstream, "/properties/status/properties/conditions/items");
    assert_eq!(
        condition["properties"]["status"]["enum"],
        serde_json::json!(["True", "False", "Unknown"])
    );
    assert_eq!(
        condition["properties"]["lastTransitionTime"]["format"],
        "date-time"
    );
    // The decoder's reason check mirrors this pattern.
    assert_eq!(
        condition["properties"]["reason"]["pattern"],
        "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    );
    assert_eq!(
        schema(&upstream, "/properties/status/properties/conditions")["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}
