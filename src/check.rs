//! `seinode-tls-watcher check`: one list of SeiNodes, a kubectl-like table of their TLS
//! readiness, and an exit code for scripts and CI (0 all ready, 1 some not ready).

use std::fmt::Write as _;

use kube::api::ListParams;
use kube::Client;

use crate::index::Scope;
use crate::seinode::{decode_verdict, ConditionStatus, Verdict};
use crate::view::SeiNodeView;
use crate::watch::{WatchConfig, GROUP, PLURAL};
use crate::Error;

/// Objects per list page: the API server's own default page size for kubectl.
const PAGE_SIZE: u32 = 500;

/// One table row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    /// The verdict, or why the object could not be read.
    pub verdict: Result<Verdict, String>,
}

impl Row {
    /// Ready means the condition is True; unreadable objects are not ready.
    pub fn is_ready(&self) -> bool {
        matches!(&self.verdict, Ok(v) if v.status == ConditionStatus::True)
    }
}

/// Lists every in-scope SeiNode (all pages of every scope).
pub async fn list_rows(client: Client, config: &WatchConfig) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for scope in config.scopes() {
        let api = config.api(client.clone(), &scope);
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(selector) = &config.label_selector {
            params = params.labels(selector);
        }
        loop {
            let page = api.list(&params).await.map_err(|e| list_error(e, &scope))?;
            rows.extend(page.items.iter().filter_map(row_of));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

fn row_of(object: &SeiNodeView) -> Option<Row> {
    let verdict = match decode_verdict(&object.data) {
        Ok(None) => return None,
        Ok(Some(v)) => Ok(v),
        Err(e) => Err(e.to_string()),
    };
    Some(Row {
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        name: object.metadata.name.clone().unwrap_or_default(),
        verdict,
    })
}

fn list_error(error: kube::Error, scope: &Scope) -> Error {
    let detail = match &error {
        kube::Error::Api(s) if s.code == 404 => {
            format!("the API server does not serve {PLURAL}.{GROUP}: is the SeiNode CRD installed?")
        }
        kube::Error::Api(s) if s.code == 403 => format!(
            "forbidden: this identity may not list {PLURAL}.{GROUP} ({})",
            s.message
        ),
        _ => error.to_string(),
    };
    Error::List(format!("{scope:?}: {detail}"))
}

/// Renders rows as a table with NAMESPACE, NAME, READY, REASON, SINCE (relative to `now`).
pub fn render_table(rows: &[Row], now: jiff::Timestamp) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| match &row.verdict {
            Ok(v) => [
                row.namespace.clone(),
                row.name.clone(),
                v.status.as_str().to_owned(),
                v.reason.clone(),
                v.since
                    .map_or_else(|| "-".to_owned(), |s| age(now.as_second() - s)),
            ],
            Err(e) => [
                row.namespace.clone(),
                row.name.clone(),
                "Error".into(),
                e.clone(),
                "-".into(),
            ],
        })
        .collect();
    let header = ["NAMESPACE", "NAME", "READY", "REASON", "SINCE"];
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, verdict: Result<Verdict, String>) -> Row {
        Row {
            namespace: "sei".into(),
            name: name.into(),
            verdict,
        }
    }

    #[test]
    fn table_and_readiness() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let rows = vec![
            row(
                "a",
                Ok(Verdict {
                    status: ConditionStatus::True,
                    reason: "TLSSecretReady".into(),
                    since: Some(now.as_second() - 90_000),
                }),
            ),
            row(
                "bb",
                Ok(Verdict {
                    status: ConditionStatus::False,
                    reason: "TLSSecretNotFound".into(),
                    since: Some(now.as_second() - 600),
                }),
            ),
            row(
                "c",
                Err("status.conditions is not a list (found a string)".into()),
            ),
        ];
        let table = render_table(&rows, now);
        assert_eq!(
            table,
            "NAMESPACE   NAME   READY   REASON                                             SINCE\n\
             sei         a      True    TLSSecretReady                                     25h\n\
             sei         bb     False   TLSSecretNotFound                                  10m\n\
             sei         c      Error   status.conditions is not a list (found a string)   -\n"
        );
        assert!(rows[0].is_ready());
        assert!(!rows[1].is_ready());
        assert!(!rows[2].is_ready());
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(10_800), "3h");
        assert_eq!(age(864_000), "10d");
        assert_eq!(age(-3), "0s");
    }
}
