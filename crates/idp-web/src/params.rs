//! Query strings as CAS clients send them: a parameter given twice keeps
//! its first value (as Apereo CAS reads it), bytes that are not UTF-8 are
//! replaced, and a query that still does not fit gives the default (every
//! parameter missing), so that the protocol answers with its own error
//! (`INVALID_REQUEST`, a French page) instead of a bare 400.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The query string of the request, read leniently (see the module).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequestParts<S> for Params<T> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Params(parse(parts.uri.query().unwrap_or(""))))
    }
}

/// Parses `query`: first value of each name wins. A query without a
/// repeated name (every request of a well-behaved client) is read once.
pub fn parse<T: DeserializeOwned + Default>(query: &str) -> T {
    if let Ok(value) = serde_urlencoded::from_str(query) {
        return value;
    }
    let mut seen = std::collections::HashSet::new();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| seen.insert(name.to_string()))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    serde_urlencoded::from_str(&encoded).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    struct Q {
        service: Option<String>,
        ticket: Option<String>,
    }

    #[test]
    fn the_first_value_wins_and_garbage_is_missing() {
        let q: Q = parse("service=a&service=b&ticket=ST-1&x=%FF");
        assert_eq!(q, Q { service: Some("a".into()), ticket: Some("ST-1".into()) });
        assert_eq!(parse::<Q>("%"), Q::default());
    }
}
