//! What is watched and how each object is named: the resources, the namespaces, the label
//! selector and the list strategy, shared by the watch stage and the one-shot `check`.

use kube::runtime::watcher;
use kube::{Api, Client};

use std::sync::Arc;

use crate::filters::Filters;
use crate::index::Scope;
use crate::labels::Allowlist;
use crate::resource::{ResourceSpec, WatchedResource};
use crate::view::ObjectView;

/// Objects per page when lists are paged. kube's default is 500; at ~20 KB per SeiNode a
/// page of 500 is a 10 MB response that is buffered whole (about three times over, in
/// hyper's read buffer and the collected body) before it is parsed.
pub const LIST_PAGE_SIZE: u32 = 100;

/// How a watch gets the full state at start and after a relist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListStrategy {
    /// A streaming list: one watch request whose first events are the current objects
    /// (`sendInitialEvents`, the WatchList feature; on by default in Kubernetes 1.32 and from
    /// 1.34). Objects arrive one by one, so memory does not grow with a page. When the API
    /// server refuses it (WatchList off, as in 1.33), the watch falls back to `paged`.
    #[default]
    Stream,
    /// Paged list requests (LIST_PAGE_SIZE objects each), then a watch.
    Paged,
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The resources; their positions are their [`ResourceId`](crate::resource::ResourceId)s.
    pub resources: Vec<ResourceSpec>,
    /// Namespaces to watch; empty means all namespaces (one cluster-wide watch).
    pub namespaces: Vec<String>,
    /// Server-side label selector, as `kubectl -l`.
    pub label_selector: Option<String>,
    /// How to get the full state.
    pub list: ListStrategy,
    /// Conditions exported per object (`--max-conditions-per-object`).
    pub max_conditions: usize,
    /// What is left out: condition types per resource, namespaces (`crate::filters`).
    pub filters: Arc<Filters>,
    /// Labels and annotations copied onto each resource's info series, by position
    /// (`crate::labels`); empty when none.
    pub allowlists: Vec<Allowlist>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            resources: ResourceSpec::defaults(),
            namespaces: Vec::new(),
            label_selector: None,
            list: ListStrategy::default(),
            max_conditions: crate::conditions::MAX_CONDITIONS,
            filters: Arc::default(),
            allowlists: Vec::new(),
        }
    }
}

impl WatchConfig {
    /// Says at start-up what is left out and what is copied (one line each; a filter that
    /// leaves out a type the shipped rules page on is a warning), and makes the parser keep
    /// the allowlisted label and annotation keys.
    pub fn start_up(&self, stats: &crate::stats::Stats) {
        let counts = self.filters.counts().into_iter().map(|(at, filter, n)| {
            let resource = at
                .and_then(|at| self.resources.get(at))
                .map_or_else(String::new, |r| r.label());
            (resource, filter, n)
        });
        let _ = stats.filters.set(counts.collect());
        for (pages, line) in self.filters.start_up_lines(&self.resources) {
            if pages {
                tracing::warn!("filter: {line}");
            } else {
                tracing::info!("filter: {line}");
            }
        }
        for line in crate::labels::start_up_lines(&self.resources, &self.allowlists) {
            tracing::info!("labels: {line}");
        }
        crate::view::keep_metadata_keys(
            self.allowlists
                .iter()
                .flat_map(|a| a.labels.iter().map(|(k, _)| k.clone())),
            self.allowlists
                .iter()
                .flat_map(|a| a.annotations.iter().map(|(k, _)| k.clone())),
        );
    }

    /// One scope per watch of a namespaced resource.
    pub fn scopes(&self) -> Vec<Scope> {
        if self.namespaces.is_empty() {
            vec![Scope::AllNamespaces]
        } else {
            let mut namespaces = self.namespaces.clone();
            namespaces.sort();
            namespaces.dedup();
            namespaces.into_iter().map(Scope::Namespace).collect()
        }
    }

    /// The scopes of one resource: cluster-scoped resources are watched once.
    pub fn scopes_of(&self, resource: &WatchedResource) -> Vec<Scope> {
        if resource.namespaced {
            self.scopes()
        } else {
            vec![Scope::AllNamespaces]
        }
    }

    pub fn api(
        &self,
        client: Client,
        resource: &WatchedResource,
        scope: &Scope,
    ) -> Api<ObjectView> {
        match scope {
            Scope::AllNamespaces => Api::all_with(client, &resource.api),
            Scope::Namespace(ns) => Api::namespaced_with(client, ns, &resource.api),
        }
    }

    pub fn watcher_config(&self, strategy: ListStrategy) -> watcher::Config {
        // A short server-side timeout re-establishes quiet watches often, so that a
        // connection that hangs fails within the client's read timeout (crate::health).
        let base = watcher::Config::default().timeout(crate::health::WATCH_TIMEOUT_SECS);
        let config = match strategy {
            ListStrategy::Stream => base.streaming_lists(),
            ListStrategy::Paged => base.page_size(LIST_PAGE_SIZE),
        };
        let config = match &self.filters.field_selector() {
            Some(selector) => config.fields(selector),
            None => config,
        };
        match &self.label_selector {
            Some(selector) => config.labels(selector),
            None => config,
        }
    }
}

/// (namespace, name) of an object; cluster-scoped objects have an empty namespace. None for
/// an object without a name (or a namespaced one without a namespace).
pub fn identity<'a>(
    resource: &WatchedResource,
    object: &'a ObjectView,
) -> Option<(&'a str, &'a str)> {
    let name = object.metadata.name.as_deref()?;
    if resource.namespaced {
        Some((object.metadata.namespace.as_deref()?, name))
    } else {
        Some(("", name))
    }
}
