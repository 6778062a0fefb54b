//! The one error type of idp-core. Each variant carries a stable code that
//! pages and logs show, so that the help desk can be told what happened.

/// Errors of the domain and of the ports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by a user, an operator or a file is not acceptable.
    #[error("CORE0001 invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The thing already exists (an account, a service).
    #[error("CORE0002 {0} already exists")]
    Conflict(String),
    /// The thing does not exist.
    #[error("CORE0003 {0} not found")]
    NotFound(String),
    /// A storage adapter failed (database, ticket store). The detail is for
    /// the logs only.
    #[error("CORE0004 storage unavailable: {0}")]
    Storage(String),
    /// Password hashing failed (bad parameters, worker pool gone).
    #[error("CORE0005 password hashing failed: {0}")]
    Hashing(String),
}

impl Error {
    /// Shortcut for [`Error::Invalid`].
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { what, reason: reason.into() }
    }

    /// The stable code of the error (`CORE0004`), for pages and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "CORE0001",
            Error::Conflict(_) => "CORE0002",
            Error::NotFound(_) => "CORE0003",
            Error::Storage(_) => "CORE0004",
            Error::Hashing(_) => "CORE0005",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
