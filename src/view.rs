//! The shape in which watched objects (of any kind) are read off the wire: identity plus only
//! the fields [`crate::conditions::decode_conditions`] and, for SeiNodes,
//! [`crate::seinode::decode_verdict`] look at. Everything else is skipped by the JSON parser
//! as it streams past and is never allocated.
//!
//! ```text
//!   list page / watch event JSON ──serde──▶ ObjectView {
//!       metadata: name, namespace, uid, resourceVersion, generation, and only the
//!                 allowlisted keys of labels and annotations (not managedFields, …)
//!       data:     {"spec": {"sidecar": {"tls": …}},
//!                  "status": {"conditions": […]}}                (not peers, plan, overrides, …)
//!   }
//! ```
//!
//! Why not `DynamicObject`: it keeps the whole object as a `serde_json::Value` tree, which for
//! a realistic 20 KB SeiNode is ~100 KB of heap, and a list page holds 500 of them at once.
//! Why not a typed struct: a typed struct fails the whole list page on one object with a
//! malformed status. This view keeps the `DynamicObject` property that matters: any shape
//! parses, and a field of the wrong type is carried through as it is so that
//! `decode_verdict` reports it for that one object.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::RwLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::DynamicResourceScope;
use kube::Resource;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One object as the watcher keeps it while decoding: a few hundred bytes, whatever the
/// object's size on the API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectView {
    /// Only `name`, `namespace`, `uid`, `resourceVersion` and `generation` are filled, and
    /// `labels` and `annotations` with the keys given to [`keep_metadata_keys`] (if any).
    pub metadata: ObjectMeta,
    /// The picked subset of the object (see the module docs); a JSON object.
    pub data: Value,
}

/// Which fields to keep below one JSON node.
enum Pick {
    /// Keep the whole value.
    All,
    /// Keep only these keys of an object (a non-object value is kept whole, so that a wrong
    /// type reaches `decode_verdict` and is reported there).
    Fields(&'static [(&'static str, Pick)]),
}

/// What `decode_verdict` reads. Change both together: `tests::view_keeps_what_decode_reads`
/// checks that the verdict of the view equals the verdict of the whole object.
const PICKED: Pick = Pick::Fields(&[
    (
        "spec",
        Pick::Fields(&[("sidecar", Pick::Fields(&[("tls", Pick::All)]))]),
    ),
    ("status", Pick::Fields(&[("conditions", Pick::All)])),
]);

impl<'de> Deserialize<'de> for ObjectView {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ViewVisitor)
    }
}

/// The metadata fields the watcher uses; the rest of `metadata` (managedFields: often larger
/// than the status; labels and annotations that no allowlist names) is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaView {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    #[serde(default, deserialize_with = "kept_labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "kept_annotations")]
    annotations: Option<BTreeMap<String, String>>,
}

/// The label and annotation keys kept while parsing (the union of every resource's
/// allowlist; `crate::labels`). Process-wide because kube-runtime deserializes
/// [`ObjectView`] itself, with no way to hand it a seed; written once at start, before any
/// watch, by [`keep_metadata_keys`]. Empty (the default): labels and annotations are
/// skipped as before, never allocated.
static KEPT_KEYS: RwLock<KeptKeys> = RwLock::new(KeptKeys {
    labels: BTreeSet::new(),
    annotations: BTreeSet::new(),
});

struct KeptKeys {
    labels: BTreeSet<String>,
    annotations: BTreeSet<String>,
}

/// Keeps these label and annotation keys from now on (added to those kept already).
pub fn keep_metadata_keys(
    labels: impl IntoIterator<Item = String>,
    annotations: impl IntoIterator<Item = String>,
) {
    let mut kept = KEPT_KEYS.write().unwrap_or_else(|e| e.into_inner());
    kept.labels.extend(labels);
    kept.annotations.extend(annotations);
}

fn kept_labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_any(KeptMap(|k| &k.labels))
}

fn kept_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_any(KeptMap(|k| &k.annotations))
}

/// Reads a string map keeping only the keys in one of [`KEPT_KEYS`]' sets; anything else
/// (other keys, a value that is not a string, a map that is not a map) is skipped.
struct KeptMap(fn(&KeptKeys) -> &BTreeSet<String>);

impl<'de> Visitor<'de> for KeptMap {
    type Value = Option<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let kept = KEPT_KEYS.read().unwrap_or_else(|e| e.into_inner());
        let keys = (self.0)(&kept);
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if keys.contains(key.as_ref()) {
                if let StringOrNot::String(value) = map.next_value()? {
                    out.insert(key.into_owned(), value);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A map value: a string is kept, anything else skipped.
enum StringOrNot {
    String(String),
    Not,
}

impl<'de> Deserialize<'de> for StringOrNot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let one_level = Bounded {
            pick: None,
            depth: 1,
        };
        match one_level.deserialize(d)? {
            Value::String(s) if s != TOO_DEEP => Ok(StringOrNot::String(s)),
            _ => Ok(StringOrNot::Not),
        }
    }
}

struct ViewVisitor;

impl<'de> Visitor<'de> for ViewVisitor {
    type Value = ObjectView;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectView, A::Error> {
        let mut view = ObjectView {
            data: Value::Object(Map::new()),
            ..ObjectView::default()
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "metadata" {
                let meta: MetaView = map.next_value()?;
                view.metadata = ObjectMeta {
                    name: meta.name,
                    namespace: meta.namespace,
                    uid: meta.uid,
                    resource_version: meta.resource_version,
                    generation: meta.generation,
                    labels: meta.labels,
                    annotations: meta.annotations,
                    ..ObjectMeta::default()
                };
            } else if let Some(pick) = field(&PICKED, &key) {
                let value = map.next_value_seed(pick)?;
                if let Value::Object(data) = &mut view.data {
                    data.insert(key.into_owned(), value);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(view)
    }
}

fn field(pick: &'static Pick, key: &str) -> Option<&'static Pick> {
    match pick {
        Pick::All => None,
        Pick::Fields(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, p)| p),
    }
}

/// How many levels of JSON are kept below a picked field (`status.conditions`: the list,
/// an entry, a field, … ). A real condition is 3 levels deep; deeper values are replaced
/// by [`TOO_DEEP`] and skipped by the parser without being built, so an object nested past
/// the JSON parser's recursion limit (128) can neither fail the list page or watch event
/// that carries it nor cost a stack frame per level.
pub const MAX_PICKED_DEPTH: usize = 16;

/// What a value nested deeper than [`MAX_PICKED_DEPTH`] is read as: a string no condition
/// field accepts, so the field is reported as unreadable for that object alone.
pub const TOO_DEEP: &str = "<nested too deep: not read>";

impl<'de> DeserializeSeed<'de> for &'static Pick {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Bounded {
            pick: Some(self),
            depth: MAX_PICKED_DEPTH,
        }
        .deserialize(deserializer)
    }
}

/// Reads any JSON value into a [`Value`], at most `depth` levels deep; with `pick`, only the
/// picked keys of an object (any other JSON value is kept whole, so that a wrong type
/// reaches the decoders and is reported there).
#[derive(Clone, Copy)]
struct Bounded {
    pick: Option<&'static Pick>,
    depth: usize,
}

impl Bounded {
    fn below(self, pick: Option<&'static Pick>) -> Bounded {
        Bounded {
            pick,
            depth: self.depth - 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth == 0 {
            // serde_json skips a value iteratively, whatever its depth.
            deserializer.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Value::String(TOO_DEEP.to_owned()));
        }
        let pick = match self.pick {
            Some(Pick::All) | None => None,
            fields => fields,
        };
        deserializer.deserialize_any(Bounded { pick, ..self })
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let seed = match self.pick {
                None => self.below(None),
                Some(pick) => match field(pick, &key) {
                    Some(sub) => self.below(Some(sub)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
            };
            let value = map.next_value_seed(seed)?;
            kept.insert(key.into_owned(), value);
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.below(None))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Resource for ObjectView {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seinode::decode_verdict;
    use serde_json::json;

    fn realistic(status: Value) -> Value {
        json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {
                "name": "rpc-0", "namespace": "sei", "uid": "u-1", "resourceVersion": "42",
                "labels": {"team": "infra"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:peers": {}}}}]
            },
            "spec": {
                "chainId": "pacific-1",
                "peers": [{"static": {"addresses": ["a@b:26656"]}}],
                "sidecar": {"image": "seictl:v1", "port": 7777, "tls": {"secretName": "rpc-0-tls"}}
            },
            "status": status
        })
    }

    #[test]
    fn keeps_identity_and_only_the_picked_fields() {
        let object = realistic(json!({
            "phase": "Running",
            "resolvedPeers": ["x@y:26656"],
            "conditions": [{"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretNotFound"}]
        }));
        let view: ObjectView = serde_json::from_value(object).unwrap();
        assert_eq!(view.metadata.name.as_deref(), Some("rpc-0"));
        assert_eq!(view.metadata.namespace.as_deref(), Some("sei"));
        assert_eq!(view.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(view.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(view.metadata.labels, None);
        assert_eq!(view.metadata.managed_fields, None);
        assert_eq!(
            view.data,
            json!({
                "spec": {"sidecar": {"tls": {"secretName": "rpc-0-tls"}}},
                "status": {"conditions": [{"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretNotFound"}]}
            })
        );
    }

    /// The view must give the same verdict (or the same error) as the whole object, for
    /// well-formed and malformed shapes alike.
    #[test]
    fn view_keeps_what_decode_reads() {
        let statuses = [
            json!({"conditions": [{"type": "SidecarTLSSecretReady", "status": "True", "reason": "TLSSecretReady", "lastTransitionTime": "2026-11-30T00:00:00Z"}]}),
            json!({"conditions": [{"type": "Other", "status": 3}, {"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretSANsMismatch"}]}),
            json!({"conditions": "not a list"}),
            json!({"conditions": [{"type": "SidecarTLSSecretReady"}]}),
            json!({"conditions": [{"type": "SidecarTLSSecretReady", "status": true}]}),
            json!({"conditions": null}),
            json!("a string status"),
            json!(["a", "list", "status"]),
            json!(7),
            Value::Null,
            json!({}),
        ];
        for status in statuses {
            let object = realistic(status.clone());
            let view: ObjectView = serde_json::from_value(object.clone()).unwrap();
            assert_eq!(
                decode_verdict(&view.data),
                decode_verdict(&object),
                "status {status}"
            );
        }
        for spec in [
            json!({"sidecar": {"tls": "yes"}}),
            json!({"sidecar": null}),
            json!({"sidecar": 1}),
            json!(null),
            json!([1]),
        ] {
            let mut object = realistic(json!({}));
            object["spec"] = spec.clone();
            let view: ObjectView = serde_json::from_value(object.clone()).unwrap();
            assert_eq!(
                decode_verdict(&view.data),
                decode_verdict(&object),
                "spec {spec}"
            );
        }
    }

    /// JSON nested `depth` levels deep: `[[[…"x"…]]]`.
    fn nested(depth: usize) -> String {
        format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth))
    }

    fn object_text(name: &str, status_field: &str) -> String {
        format!(
            r#"{{"apiVersion":"sei.io/v1alpha1","kind":"SeiNode","metadata":{{"name":"{name}","namespace":"sei"}},
               "spec":{{"sidecar":{{"tls":{{"secretName":"s"}}}}}},
               "status":{{"conditions":[{{"type":"SigningKeyReady","status":{status_field},"reason":"R"}}]}}}}"#
        )
    }

    /// An object nested past the JSON parser's recursion limit (128) in its conditions, in
    /// its sidecar TLS or anywhere else must not fail the list page or watch event that
    /// carries it: the healthy objects beside it are read, and the deep field is read as
    /// [`TOO_DEEP`] for that object alone (issue: "one object blinds its whole kind").
    #[test]
    fn an_object_nested_past_the_parser_limit_does_not_fail_its_page_or_event() {
        let deep = nested(10_000);
        let poison = object_text("poison", &deep);
        let poison_tls = object_text("poison-tls", r#""True""#)
            .replace(r#"{"secretName":"s"}"#, &format!(r#"{{"a":{deep}}}"#));
        let poison_elsewhere = object_text("poison-elsewhere", r#""True""#)
            .replace(r#""spec":{"#, &format!(r#""spec":{{"peers":{deep},"#));
        let healthy = object_text("healthy", r#""False""#);
        let page = format!(
            r#"{{"apiVersion":"sei.io/v1alpha1","kind":"SeiNodeList","metadata":{{"resourceVersion":"7"}},
                "items":[{poison},{healthy},{poison_tls},{poison_elsewhere}]}}"#
        );
        let list: kube::core::ObjectList<ObjectView> =
            serde_json::from_str(&page).expect("the page parses");
        let names: Vec<_> = list
            .items
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["poison", "healthy", "poison-tls", "poison-elsewhere"]
        );
        // Kept down to the depth bound, then cut: a status no decoder reads as one.
        let status = list.items[0]
            .data
            .pointer("/status/conditions/0/status")
            .unwrap();
        assert!(status.is_array());
        assert!(status.to_string().contains(TOO_DEEP), "{status}");
        assert!(list.items[2].data.to_string().contains(TOO_DEEP));
        assert_eq!(
            list.items[1].data.pointer("/status/conditions/0/status"),
            Some(&json!("False"))
        );
        assert_eq!(
            list.items[3].data.pointer("/status/conditions/0/status"),
            Some(&json!("True"))
        );
        let event = format!(r#"{{"type":"MODIFIED","object":{poison}}}"#);
        let event: kube::core::WatchEvent<ObjectView> =
            serde_json::from_str(&event).expect("the watch event parses");
        assert!(
            matches!(event, kube::core::WatchEvent::Modified(o) if o.metadata.name.as_deref() == Some("poison"))
        );
    }

    /// Only the allowlisted label and annotation keys are kept (keys of this test's own,
    /// so that tests running beside it are not affected: the set is process-wide); a
    /// value that is not a string, or labels that are not a map, are skipped.
    #[test]
    fn keeps_only_the_allowlisted_metadata_keys() {
        keep_metadata_keys(
            ["view-test/team".to_owned()],
            ["view-test/owner".to_owned()],
        );
        let mut object = realistic(json!({}));
        object["metadata"]["labels"] =
            json!({"view-test/team": "infra", "view-test/other": "x", "team": "y"});
        object["metadata"]["annotations"] = json!({"view-test/owner": "alice", "view-test/team": "not an annotation key", "big": "z".repeat(1000)});
        let view: ObjectView = serde_json::from_value(object.clone()).unwrap();
        assert_eq!(
            view.metadata.labels,
            Some([("view-test/team".to_owned(), "infra".to_owned())].into())
        );
        assert_eq!(
            view.metadata.annotations,
            Some([("view-test/owner".to_owned(), "alice".to_owned())].into())
        );
        for odd in [
            json!({"view-test/team": 5}),
            json!(["a"]),
            json!("s"),
            Value::Null,
        ] {
            object["metadata"]["labels"] = odd.clone();
            let view: ObjectView = serde_json::from_value(object.clone()).unwrap();
            assert_eq!(view.metadata.labels, None, "{odd}");
            assert_eq!(view.metadata.name.as_deref(), Some("rpc-0"), "{odd}");
        }
    }

    #[test]
    fn a_list_page_with_odd_objects_still_parses() {
        let page = json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeList",
            "metadata": {"resourceVersion": "7"},
            "items": [
                realistic(json!({"conditions": "oops"})),
                {"metadata": {"name": "bare", "namespace": "sei"}},
                realistic(json!({"conditions": [{"type": "SidecarTLSSecretReady", "status": "True"}]})),
            ]
        });
        let text = serde_json::to_string(&page).unwrap();
        let list: kube::core::ObjectList<ObjectView> = serde_json::from_str(&text).unwrap();
        assert_eq!(list.items.len(), 3);
        assert_eq!(list.items[1].metadata.name.as_deref(), Some("bare"));
        assert_eq!(list.items[1].data, json!({}));
    }
}
