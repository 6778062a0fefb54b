//! The CAS kind: the redirect to `<cas_url>/login?service=<callback>`, the
//! validation at `<cas_url>/p3/serviceValidate` (the user and its
//! attributes), and `<cas_url>/logout?service=`.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use idp_core::ports::Outbound;
use idp_core::query::with_query;
use idp_core::upstream::UpstreamConfig;

use super::{Asserted, Callback, Returned};
use crate::Result;

/// The CAS server's login page for `service` (our callback with its state).
pub(super) fn login_url(upstream: &UpstreamConfig, service: &str, renew: bool) -> Result<String> {
    let mut pairs = vec![("service", service)];
    if renew {
        pairs.push(("renew", "true"));
    }
    Ok(with_query(&format!("{}/login", upstream.cas_base()?), &pairs))
}

/// Validates the callback's ticket for `service` at the CAS server.
pub(super) async fn validate(
    outbound: &dyn Outbound,
    upstream: &UpstreamConfig,
    service: &str,
    callback: &Callback,
) -> std::result::Result<Asserted, Returned> {
    let ticket = callback.ticket.as_deref().unwrap_or_default();
    let base = upstream.cas_base().map_err(|_| Returned::Refused)?;
    let url = with_query(&format!("{base}/p3/serviceValidate"), &[("service", service), ("ticket", ticket)]);
    let body = match outbound.get_text(&url).await {
        Ok((200, body)) => body,
        Ok(_) => return Err(Returned::Refused),
        Err(_) => return Err(Returned::Unreachable),
    };
    let (user, attributes) = parse_validation(&body).ok_or(Returned::Refused)?;
    Ok(Asserted { user, attributes, id_token: None })
}

/// The CAS server's logout, coming back to `back`.
pub(super) fn logout_url(upstream: &UpstreamConfig, back: &str) -> Result<String> {
    Ok(with_query(&format!("{}/logout", upstream.cas_base()?), &[("service", back)]))
}

/// Whether the login page answers (any status but a 5xx).
pub(super) async fn probe(outbound: &dyn Outbound, upstream: &UpstreamConfig) -> std::result::Result<String, String> {
    let base = upstream.cas_base().map_err(|e| e.to_string())?;
    match outbound.get_status(&format!("{base}/login")).await {
        Ok(status) if status < 500 => Ok(format!("answers (HTTP {status})")),
        Ok(status) => Err(format!("fails (HTTP {status})")),
        Err(_) => Err("does not answer".to_owned()),
    }
}

/// The user and attributes of a CAS 2/3 validation success, or None.
pub fn parse_validation(xml: &str) -> Option<(String, BTreeMap<String, Vec<String>>)> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut user = None;
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => path.push(e.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().ok()?.trim().to_owned();
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match names.as_slice() {
                    [.., b"authenticationSuccess", b"user"] if !text.is_empty() => user = Some(text),
                    [.., b"authenticationSuccess", b"attributes", name] => {
                        let name = String::from_utf8_lossy(name).into_owned();
                        attributes.entry(name).or_default().push(text);
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => return None,
            Ok(_) => {}
        }
    }
    user.map(|u| (u, attributes))
}

#[cfg(test)]
mod tests {
    use super::parse_validation;

    #[test]
    fn a_validation_success_gives_the_user_and_its_attributes() {
        let xml = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
            <cas:user>jdupont</cas:user><cas:attributes><cas:mail>j@ac.fr</cas:mail>
            <cas:FrEduCtRefId>1234</cas:FrEduCtRefId><cas:FrEduCtRefId>99</cas:FrEduCtRefId>
            </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"#;
        let (user, attributes) = parse_validation(xml).unwrap();
        assert_eq!(user, "jdupont");
        assert_eq!(attributes["FrEduCtRefId"], ["1234", "99"]);
        assert_eq!(attributes["mail"], ["j@ac.fr"]);
        let failure = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">no</cas:authenticationFailure></cas:serviceResponse>"#;
        assert!(parse_validation(failure).is_none());
        assert!(parse_validation("pas du XML <<").is_none());
        assert!(parse_validation("<a><cas:user>x</cas:user></a>").is_none());
    }
}
