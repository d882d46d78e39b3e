//! The crate's error type. Each variant is something a user did or must fix, and its text
//! is the one line they read: what is wrong and what to do.

/// Errors that stop the watcher from starting. Once running, nothing here is returned:
/// watch and export failures are retried, counted and logged instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, environment variable or file is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// No usable Kubernetes client configuration.
    #[error("kubernetes client: {0}")]
    Kube(String),
    /// The admin HTTP server could not start.
    #[error("admin server on {addr}: {reason}")]
    Admin { addr: String, reason: String },
    /// The one-shot `check` could not list the watched resources.
    #[error("listing: {0}")]
    List(String),
}

impl Error {
    /// A fixed label for the error, used in logs and as the process exit reason.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Kube(_) => "kube",
            Error::Admin { .. } => "admin",
            Error::List(_) => "list",
        }
    }
}
