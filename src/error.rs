//! The crate's error type. Each variant is something a user did or must fix: its text says
//! what is wrong and what to do, and the error it wraps (if any) is its `source`, so the
//! line a user reads is [`Error::line`]: the text and its causes.

use std::fmt;

/// A boxed cause, for errors of several types (kubeconfig, client, discovery).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A running part of the watcher; if one ends before shutdown is asked for, the process
/// exits non-zero so that Kubernetes restarts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Watch,
    Admin,
    LeaderElection,
    Exporter,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Watch => "watch",
            Stage::Admin => "admin server",
            Stage::LeaderElection => "leader election",
            Stage::Exporter => "object exporter",
        })
    }
}

/// Errors that stop the watcher from starting, or end it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, environment variable or file is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// No usable Kubernetes client configuration.
    #[error("kubernetes client: {what}")]
    Kube {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// The admin HTTP server could not start.
    #[error("admin server on {addr}: cannot listen (choose another with --admin-addr)")]
    Admin {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The one-shot `check` could not list the watched resources.
    #[error("listing: {what}")]
    List {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// A stage ended while the watcher was running.
    #[error("the {0} ended unexpectedly; exiting so that the pod is restarted")]
    StageEnded(Stage),
}

impl Error {
    /// A client configuration error caused by `source`.
    pub fn kube(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Kube {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// A listing error, caused by `source` if given.
    pub fn list(what: impl Into<String>, source: Option<Cause>) -> Self {
        Error::List {
            what: what.into(),
            source,
        }
    }

    /// A fixed label for the error, used in logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Kube { .. } => "kube",
            Error::Admin { .. } => "admin",
            Error::List { .. } => "list",
            Error::StageEnded(_) => "stage_ended",
        }
    }

    /// The process exit code: 2 for what prevents starting (fix the configuration), 1 for
    /// a stage that ended while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::StageEnded(_) => 1,
            _ => 2,
        }
    }

    /// The one line a user reads: the error and each of its causes, joined by ": ".
    pub fn line(&self) -> String {
        let mut line = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            line.push_str(": ");
            line.push_str(&c.to_string());
            cause = c.source();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_error_and_its_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = Error::Admin {
            addr: "127.0.0.1:9090".into(),
            source: io,
        };
        assert_eq!(
            e.line(),
            "admin server on 127.0.0.1:9090: cannot listen (choose another with --admin-addr): \
             address in use"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            Error::Config("bad flag".into()).line(),
            "configuration: bad flag"
        );
    }

    #[test]
    fn a_stage_that_ends_exits_1_and_bad_configuration_exits_2() {
        assert_eq!(Error::StageEnded(Stage::Watch).exit_code(), 1);
        assert_eq!(Error::Config("x".into()).exit_code(), 2);
        assert_eq!(
            Error::StageEnded(Stage::Exporter).to_string(),
            "the object exporter ended unexpectedly; exiting so that the pod is restarted"
        );
    }
}
