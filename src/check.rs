//! `sei-condition-watcher check`: one list of every watched resource, a kubectl-like table
//! of the conditions that need attention, and an exit code for scripts and CI (0 none, 1 some).
//!
//! A condition needs attention, by upstream's naming convention, when a `*Ready` is not True
//! or a `*InProgress` / `Failed` is True ([`Polarity`]); the seed's `SidecarTLSSecretReady` is
//! a `*Ready` like the others. Objects that cannot be read are rows too.

use std::collections::HashSet;
use std::fmt::Write as _;

use kube::api::ListParams;
use kube::Client;

use crate::conditions::{decode_kept_conditions, ConditionStatus, Polarity};
use crate::config::CheckArgs;
use crate::index::Scope;
use crate::resource::WatchedResource;
use crate::view::ObjectView;
use crate::watched::WatchConfig;
use crate::Error;

/// Objects per list page: the API server's own default page size for kubectl.
const PAGE_SIZE: u32 = 500;

/// A list that keeps returning a continue token is a server bug; stop after this many pages
/// (5 million objects) rather than loop forever. (A token that comes back is caught at once.)
const MAX_PAGES: usize = 10_000;

/// One table row: a condition that needs attention, or an object that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub type_: String,
    /// The status, or `Error` for an unreadable object.
    pub status: String,
    /// The reason, or why the object could not be read.
    pub reason: String,
    pub since: Option<i64>,
}

/// What one `check` saw.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    pub rows: Vec<Row>,
    /// Objects listed, across resources.
    pub objects: usize,
    /// Resources the API server does not serve.
    pub not_served: Vec<String>,
}

/// Lists every in-scope object of every resource (all pages of every scope).
pub(crate) async fn list_rows(client: Client, config: &WatchConfig) -> Result<Listed, Error> {
    list_rows_bounded(client, config, MAX_PAGES).await
}

/// [`list_rows`] with at most `max_pages` pages per scope. A list whose continue token
/// comes back a second time would never end: it stops there, with one line saying so.
async fn list_rows_bounded(
    client: Client,
    config: &WatchConfig,
    max_pages: usize,
) -> Result<Listed, Error> {
    let mut listed = Listed::default();
    for spec in &config.resources {
        let resource = match spec.resolve(&client).await {
            Ok(Some(resource)) => resource,
            Ok(None) => {
                listed.not_served.push(spec.label());
                continue;
            }
            Err(e) => return Err(Error::list(spec.to_string(), Some(e.into()))),
        };
        for scope in config.scopes_of(&resource) {
            let api = config.api(client.clone(), &resource, &scope);
            let mut params = ListParams::default().limit(PAGE_SIZE);
            if let Some(selector) = &config.label_selector {
                params = params.labels(selector);
            }
            if let Some(selector) = config.filters.field_selector() {
                params = params.fields(&selector);
            }
            let types = config.filters.types_of(
                config
                    .resources
                    .iter()
                    .position(|r| r == spec)
                    .unwrap_or(usize::MAX),
            );
            let mut tokens = HashSet::new();
            for page_number in 1.. {
                let page = match api.list(&params).await {
                    Ok(page) => page,
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        listed.not_served.push(resource.label.clone());
                        break;
                    }
                    Err(e) => return Err(list_error(e, &resource, &scope)),
                };
                listed.objects += page.items.len();
                for object in &page.items {
                    if object
                        .metadata
                        .namespace
                        .as_deref()
                        .is_some_and(|ns| !config.filters.keeps_namespace(ns))
                    {
                        continue;
                    }
                    listed.rows.extend(rows_of_kept(
                        &resource,
                        object,
                        config.max_conditions,
                        &|t| types.keeps(t),
                    ));
                }
                let Some(token) = page.metadata.continue_.filter(|c| !c.is_empty()) else {
                    break;
                };
                if !tokens.insert(token.clone()) {
                    return Err(Error::list(
                        format!(
                            "{} {scope:?}: the API server sent a continue token it had sent \
                             before (page {page_number}): this list would never end; giving up",
                            resource.label
                        ),
                        None,
                    ));
                }
                if page_number == max_pages {
                    return Err(Error::list(
                        format!(
                            "{} {scope:?}: the API server kept sending continue tokens for \
                             {max_pages} pages; giving up",
                            resource.label
                        ),
                        None,
                    ));
                }
                params = params.continue_token(&token);
            }
        }
    }
    listed.rows.sort_by(|a, b| {
        (&a.kind, &a.namespace, &a.name, &a.type_).cmp(&(&b.kind, &b.namespace, &b.name, &b.type_))
    });
    Ok(listed)
}

/// The rows of one object: its conditions that need attention (of the `max` the watcher
/// exports), a row saying how many it cuts, or one error row. (`check` reads through
/// [`rows_of_kept`], with the filters; this is it with none, for the tests.)
#[cfg(test)]
pub(crate) fn rows_of(resource: &WatchedResource, object: &ObjectView, max: usize) -> Vec<Row> {
    rows_of_kept(resource, object, max, &|_| true)
}

/// [`rows_of`] with the condition types `keep` accepts only (`--condition-types-allow`,
/// `--condition-types-deny`: `check` leaves out what the watcher does not export).
pub(crate) fn rows_of_kept(
    resource: &WatchedResource,
    object: &ObjectView,
    max: usize,
    keep: &dyn Fn(&str) -> bool,
) -> Vec<Row> {
    // Named as the watch names it; an object the watch would skip is one error row.
    let identity = crate::watched::identity(resource, object);
    let (namespace, name) = identity.unwrap_or(("", "-"));
    let row = |type_: &str, status: &str, reason: &str, since| Row {
        kind: resource.api.kind.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        since,
    };
    if identity.is_none() {
        return vec![row(
            "-",
            "Error",
            "no metadata.name (or metadata.namespace)",
            None,
        )];
    }
    match decode_kept_conditions(&object.data, object.metadata.generation, max, keep) {
        Err(e) => vec![row("-", "Error", &e.to_string(), None)],
        Ok(decoded) => {
            let mut rows: Vec<Row> = decoded
                .conditions
                .iter()
                .filter(|c| Polarity::of(&c.type_).needs_attention(c.status))
                .map(|c| row(&c.type_, c.status.as_str(), &c.reason, c.since))
                .collect();
            if decoded.truncated > 0 {
                rows.push(row(
                    "-",
                    "Truncated",
                    &format!(
                        "{} more conditions than --max-conditions-per-object={max}; not exported",
                        decoded.truncated
                    ),
                    None,
                ));
            }
            // The seed: a SeiNode with sidecar TLS but no condition yet is not ready either.
            if resource.is_seinode {
                match crate::seinode::decode_verdict(&object.data) {
                    Ok(Some(v))
                        if v.status != ConditionStatus::True
                            && !rows
                                .iter()
                                .any(|r| r.type_ == crate::seinode::CONDITION_TYPE) =>
                    {
                        rows.push(row(
                            crate::seinode::CONDITION_TYPE,
                            v.status.as_str(),
                            &v.reason,
                            v.since,
                        ))
                    }
                    Err(e) => rows.push(row(
                        crate::seinode::CONDITION_TYPE,
                        "Error",
                        &e.to_string(),
                        None,
                    )),
                    _ => {}
                }
            }
            rows
        }
    }
}

fn list_error(error: kube::Error, resource: &WatchedResource, scope: &Scope) -> Error {
    let what = match &error {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{} {scope:?}: forbidden: grant this identity list on {}",
            resource.label, resource.label
        ),
        _ => format!("{} {scope:?}", resource.label),
    };
    Error::list(what, Some(error.into()))
}

/// Renders rows as a table with KIND, NAMESPACE, NAME, TYPE, STATUS, REASON, SINCE (relative
/// to `now`).
pub(crate) fn render_table(rows: &[Row], now: jiff::Timestamp) -> String {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.kind.clone(),
                row.namespace.clone(),
                row.name.clone(),
                row.type_.clone(),
                row.status.clone(),
                row.reason.clone(),
                row.since
                    .map_or_else(|| "-".to_owned(), |s| age(now.as_second() - s)),
            ]
        })
        .collect();
    let header = [
        "KIND",
        "NAMESPACE",
        "NAME",
        "TYPE",
        "STATUS",
        "REASON",
        "SINCE",
    ];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header.map(str::to_owned)).chain(cells) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl-style age: 45s, 12m, 3h, 9d.
fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// `check`: prints the table and returns whether no condition needs attention.
pub async fn run(args: CheckArgs) -> Result<bool, Error> {
    let client = crate::client::kube_client(&args.kube).await?;
    let config = args.scope.watch_config()?;
    for (_, line) in config.filters.start_up_lines(&config.resources) {
        eprintln!("filter: {line}");
    }
    let listed = list_rows(client, &config).await?;
    for missing in &listed.not_served {
        eprintln!("{missing}: not served by this API server (CRD not installed); skipped");
    }
    print!("{}", render_table(&listed.rows, jiff::Timestamp::now()));
    if listed.rows.is_empty() {
        eprintln!("every condition is fine across {} objects", listed.objects);
    }
    Ok(listed.rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::MAX_CONDITIONS;
    use crate::resource::ResourceSpec;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    fn object(name: &str, data: serde_json::Value) -> ObjectView {
        let mut o = ObjectView::default();
        o.metadata.name = Some(name.into());
        o.metadata.namespace = Some("sei".into());
        o.data = data;
        o
    }

    /// A `False` at position 70 of 70 is listed (kept before the healthy ones), and one row
    /// says how many conditions the watcher cuts.
    #[test]
    fn a_cut_list_shows_its_late_broken_condition_and_the_cut() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let mut conditions: Vec<serde_json::Value> = (0..69)
            .map(|i| json!({"type": format!("Extra{i}Ready"), "status": "True", "reason": "Fine"}))
            .collect();
        conditions.push(
            json!({"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid"}),
        );
        let o = object("validator-0", json!({"status": {"conditions": conditions}}));
        let rows = rows_of(&seinode, &o, MAX_CONDITIONS);
        let summary: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.type_.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(summary, [("SigningKeyReady", "False"), ("-", "Truncated")]);
        assert!(
            rows[1].reason.starts_with("6 more conditions"),
            "{}",
            rows[1].reason
        );
    }

    #[test]
    fn rows_for_conditions_that_need_attention() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let o = object(
            "validator-0",
            json!({"status": {"conditions": [
                {"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid"},
                {"type": "NodeKeyReady", "status": "True", "reason": "NodeKeyValidated"},
                {"type": "StateSyncReady", "status": "Unknown", "reason": "SyncerSourceError"},
                {"type": "NodeUpdateInProgress", "status": "True", "reason": "Updating"},
                {"type": "WorkflowInProgress", "status": "False", "reason": "NoWorkflow"},
                {"type": "Paused", "status": "True", "reason": "Paused"},
            ]}}),
        );
        let types: Vec<String> = rows_of(&seinode, &o, MAX_CONDITIONS)
            .into_iter()
            .map(|r| r.type_)
            .collect();
        assert_eq!(
            types,
            ["SigningKeyReady", "StateSyncReady", "NodeUpdateInProgress"]
        );
        let task = ResourceSpec::defaults()[2].known().unwrap();
        let o = object(
            "t",
            json!({"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "TaskFailed"},
            {"type": "Ready", "status": "False", "reason": "TaskFailed"}]}}),
        );
        assert_eq!(rows_of(&task, &o, MAX_CONDITIONS).len(), 2);
        let o = object("bad", json!({"status": {"conditions": "nope"}}));
        assert_eq!(rows_of(&task, &o, MAX_CONDITIONS)[0].status, "Error");
    }

    #[test]
    fn an_object_the_watch_would_skip_is_one_error_row() {
        let resource = ResourceSpec::defaults()[0].known().unwrap();
        let mut nameless = object("x", json!({"status": {"conditions": []}}));
        nameless.metadata.name = None;
        let rows = rows_of(&resource, &nameless, MAX_CONDITIONS);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].status.as_str()),
            ("-", "Error")
        );
    }

    #[test]
    fn the_seed_condition_is_a_row_even_before_the_controller_writes_it() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let o = object(
            "rpc-0",
            json!({"spec": {"sidecar": {"tls": {"secretName": "s"}}}}),
        );
        let rows = rows_of(&seinode, &o, MAX_CONDITIONS);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].status.as_str(), rows[0].reason.as_str()),
            ("Unknown", "ConditionMissing")
        );
        let o = object(
            "rpc-1",
            json!({"spec": {"sidecar": {"tls": {"secretName": "s"}}},
            "status": {"conditions": [{"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretNotFound"}]}}),
        );
        assert_eq!(
            rows_of(&seinode, &o, MAX_CONDITIONS).len(),
            1,
            "one row, not two"
        );
    }

    #[test]
    fn table() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let rows = vec![
            Row {
                kind: "SeiNode".into(),
                namespace: "sei".into(),
                name: "validator-0".into(),
                type_: "SigningKeyReady".into(),
                status: "False".into(),
                reason: "SigningKeyInvalid".into(),
                since: Some(now.as_second() - 600),
            },
            Row {
                kind: "SeiNodeTask".into(),
                namespace: "sei".into(),
                name: "t".into(),
                type_: "Failed".into(),
                status: "True".into(),
                reason: "TaskFailed".into(),
                since: None,
            },
        ];
        assert_eq!(
            render_table(&rows, now),
            "KIND          NAMESPACE   NAME          TYPE              STATUS   REASON              SINCE\n\
             SeiNode       sei         validator-0   SigningKeyReady   False    SigningKeyInvalid   10m\n\
             SeiNodeTask   sei         t             Failed            True     TaskFailed          -\n"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(10_800), "3h");
        assert_eq!(age(864_000), "10d");
        assert_eq!(age(-3), "0s");
    }

    /// A FAKE API server, for the one fault the real one cannot produce: a list that never
    /// ends. It answers every request with an empty SeiNode list page whose continue token
    /// is `token(n)` for the n-th request (from 0), and records the request URIs. After
    /// [`FakeEndlessList::GIVE_UP`] requests it ends the list, so that a client without a
    /// bound fails its test instead of hanging it.
    struct FakeEndlessList {
        url: String,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl FakeEndlessList {
        const GIVE_UP: usize = 2 * MAX_PAGES;

        async fn start(token: fn(usize) -> String) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let n = {
                                    let mut seen = seen.lock().unwrap();
                                    seen.push(req.uri().to_string());
                                    seen.len() - 1
                                };
                                let next = if n + 1 < Self::GIVE_UP {
                                    token(n)
                                } else {
                                    String::new()
                                };
                                let body = json!({
                                    "apiVersion": "sei.io/v1alpha1",
                                    "kind": "SeiNodeList",
                                    "metadata": {"resourceVersion": "1", "continue": next},
                                    "items": [],
                                });
                                let response = http::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(http_body_util::Full::new(hyper::body::Bytes::from(
                                        body.to_string(),
                                    )))
                                    .unwrap();
                                async move { Ok::<_, std::convert::Infallible>(response) }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Self { url, requests }
        }

        fn client(&self) -> Client {
            Client::try_from(kube::Config::new(self.url.parse().unwrap())).unwrap()
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn seinodes_only() -> WatchConfig {
        WatchConfig {
            resources: ResourceSpec::defaults()[..1].to_vec(),
            ..WatchConfig::default()
        }
    }

    #[tokio::test]
    async fn a_repeating_continue_token_ends_the_list_with_one_line() {
        let fake = FakeEndlessList::start(|_| "the-same-token".into()).await;
        let error = list_rows(fake.client(), &seinodes_only())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "listing: seinodes.sei.io AllNamespaces: the API server sent a continue \
             token it had sent before (page 2): this list would never end; giving up"
        );
        let requests = fake.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(
            requests[1].contains("continue=the-same-token"),
            "the token is followed once: {requests:?}"
        );
    }

    #[tokio::test]
    async fn a_list_that_never_ends_stops_at_the_page_bound() {
        // A new token on every page: only the bound stops it.
        let fake = FakeEndlessList::start(|n| format!("page-{}", n + 1)).await;
        let error = list_rows_bounded(fake.client(), &seinodes_only(), 5)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "listing: seinodes.sei.io AllNamespaces: the API server kept sending \
             continue tokens for 5 pages; giving up"
        );
        let requests = fake.requests();
        assert_eq!(requests.len(), 5, "{requests:?}");
        for (n, uri) in requests.iter().enumerate().skip(1) {
            let token = uri
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("continue="));
            assert_eq!(token, Some(format!("page-{n}").as_str()), "{uri}");
        }
    }

    #[tokio::test]
    async fn list_rows_is_bounded_by_max_pages() {
        let fake = FakeEndlessList::start(|n| format!("page-{}", n + 1)).await;
        let error = list_rows(fake.client(), &seinodes_only())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(&format!("continue tokens for {MAX_PAGES} pages; giving up")),
            "{error}"
        );
        assert_eq!(fake.requests().len(), MAX_PAGES);
    }
}
