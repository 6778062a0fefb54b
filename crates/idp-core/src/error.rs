//! The one error type of idp-core. Each variant carries a stable code that
//! pages and logs show, so that the help desk can be told what happened
//! (the list is in docs/operations.md, "Error codes").
//!
//! A failure of a port or of a library keeps its cause: the variant holds
//! the original error as its [`std::error::Error::source`], and its message
//! repeats the cause's, so that a log line with the error alone still says
//! what failed.

/// The original error behind a failure (a database, Redis, JSON, JOSE,
/// HTTP, SMTP or template error), boxed so that idp-core does not depend on
/// the crates that raise them. A plain message converts too
/// (`"no signing key".into()`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the domain and of the ports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by a user, an operator or a file is not acceptable.
    #[error("CORE0001 invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The thing already exists (an account, a service), or it changed
    /// since it was read (an account written by someone else meanwhile);
    /// the message says which.
    #[error("CORE0002 {0}")]
    Conflict(String),
    /// The thing does not exist.
    #[error("CORE0003 {0} not found")]
    NotFound(String),
    /// A storage adapter failed (database, ticket store, files). The detail
    /// is for the logs only.
    #[error("CORE0004 storage unavailable: {0}")]
    Storage(#[source] Cause),
    /// Password hashing failed (bad parameters, worker pool gone).
    #[error("CORE0005 password hashing failed: {0}")]
    Hashing(#[source] Cause),
    /// A record could not be encoded to JSON or decoded from it.
    #[error("CORE0006 record not encoded or decoded: {0}")]
    Json(#[from] serde_json::Error),
    /// A signing key could not be generated, read or used (JOSE).
    #[error("CORE0007 signing key: {0}")]
    SigningKey(#[source] Cause),
    /// A call to another system failed (HTTP to a service, SMTP).
    #[error("CORE0008 outbound call failed: {0}")]
    Outbound(#[source] Cause),
    /// A page or mail template did not render.
    #[error("CORE0009 template: {0}")]
    Template(#[source] Cause),
    /// The operating system's random generator failed.
    #[error("CORE0010 random generator: {0}")]
    Random(#[source] Cause),
    /// More logins at once than the password hashing queue holds (a
    /// flood): refused at once, to be tried again a moment later. Counted
    /// (`idp_hashing_refused_total`) and summed up in the log by the hashing
    /// adapter, not logged once per request.
    #[error("CORE0011 the password hashing queue is full")]
    Overloaded,
}

impl Error {
    /// Shortcut for [`Error::Invalid`].
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { what, reason: reason.into() }
    }

    /// Shortcut for [`Error::Storage`], from an error or a message.
    pub fn storage(cause: impl Into<Cause>) -> Self {
        Error::Storage(cause.into())
    }

    /// The stable code of the error (`CORE0004`), for pages and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "CORE0001",
            Error::Conflict(_) => "CORE0002",
            Error::NotFound(_) => "CORE0003",
            Error::Storage(_) => "CORE0004",
            Error::Hashing(_) => "CORE0005",
            Error::Json(_) => "CORE0006",
            Error::SigningKey(_) => "CORE0007",
            Error::Outbound(_) => "CORE0008",
            Error::Template(_) => "CORE0009",
            Error::Random(_) => "CORE0010",
            Error::Overloaded => "CORE0011",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_cause_is_kept_and_named() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Error::storage(io);
        assert_eq!(e.code(), "CORE0004");
        assert_eq!(e.to_string(), "CORE0004 storage unavailable: connection refused");
        let source = e.source().unwrap();
        assert_eq!(source.downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::ConnectionRefused);

        let json: Error = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert_eq!(json.code(), "CORE0006");
        assert!(json.source().unwrap().is::<serde_json::Error>());
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            Error::invalid("x", "y"),
            Error::Conflict("x".into()),
            Error::NotFound("x".into()),
            Error::storage("x"),
            Error::Hashing("x".into()),
            serde_json::from_str::<u8>("x").unwrap_err().into(),
            Error::SigningKey("x".into()),
            Error::Outbound("x".into()),
            Error::Template("x".into()),
            Error::Random("x".into()),
            Error::Overloaded,
        ];
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        assert!(all.iter().all(|e| e.to_string().starts_with(e.code())));
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
