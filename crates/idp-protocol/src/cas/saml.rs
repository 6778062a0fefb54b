//! `/samlValidate`: service ticket validation with a SAML 1.1 request in a
//! SOAP envelope, answered as Apereo CAS and django-cas-server do — a SAML
//! 1.1 `Response` whose `Assertion` carries an `AuthenticationStatement` and
//! an `AttributeStatement` with the released attributes.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::fmt::Write as _;

use super::Cas;
use super::validate::{Failure, FailureCode, Success, ValidateParams};

/// Namespace of the attributes, as Apereo CAS sends it.
const ATTRIBUTE_NAMESPACE: &str = "http://www.ja-sig.org/products/cas/";

/// What the SOAP body asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SamlRequest {
    /// `RequestID` of the `samlp:Request`, echoed as `InResponseTo`.
    pub request_id: Option<String>,
    /// The service ticket (`samlp:AssertionArtifact`).
    pub artifact: Option<String>,
}

/// Reads the `samlp:Request` in a SOAP body. Anything unreadable gives an
/// empty request, which validation refuses.
pub fn parse_request(body: &str) -> SamlRequest {
    let mut reader = Reader::from_str(body);
    let mut request = SamlRequest::default();
    let mut in_artifact = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let local = e.local_name();
                if local.as_ref() == b"Request" {
                    request.request_id = e
                        .try_get_attribute("RequestID")
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok())
                        .map(|v| v.into_owned());
                }
                in_artifact = local.as_ref() == b"AssertionArtifact";
            }
            Ok(Event::Text(t)) if in_artifact => {
                if let Ok(text) = t.unescape() {
                    let text = text.trim();
                    if !text.is_empty() {
                        request.artifact = Some(text.to_owned());
                    }
                }
            }
            Ok(Event::End(_)) => in_artifact = false,
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    request
}

impl Cas {
    /// Validates the ticket of a SAML 1.1 request for `target` and returns
    /// the SOAP answer. `issuer` names this server in the assertion.
    pub async fn saml_validate(&self, target: Option<&str>, body: &str, issuer: &str) -> String {
        let request = parse_request(body);
        let params = ValidateParams {
            service: target.map(str::to_owned),
            ticket: request.artifact.clone(),
            ..ValidateParams::default()
        };
        let outcome = self.validate(&params).await;
        let ids = (xml_id("_"), xml_id("_"));
        saml_response(&outcome, &request, target.unwrap_or_default(), issuer, self.clock.now(), ids)
    }
}

/// The SOAP envelope of a SAML 1.1 answer. `ids` are the response and
/// assertion ids.
pub fn saml_response(
    outcome: &Result<Success, Failure>,
    request: &SamlRequest,
    target: &str,
    issuer: &str,
    now: DateTime<Utc>,
    ids: (String, String),
) -> String {
    let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = String::with_capacity(2048);
    out.push_str(r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">"#);
    out.push_str("<SOAP-ENV:Header/><SOAP-ENV:Body>");
    let _ = write!(
        out,
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"IssueInstant="{now}" MajorVersion="1" MinorVersion="1" Recipient="{target}" ResponseID="{id}""#
        ),
        now = instant(now),
        target = escape(target),
        id = ids.0,
    );
    if let Some(r) = &request.request_id {
        let _ = write!(out, r#" InResponseTo="{}""#, escape(r.as_str()));
    }
    out.push('>');
    match outcome {
        Ok(s) => {
            out.push_str(r#"<samlp:Status><samlp:StatusCode Value="samlp:Success"/></samlp:Status>"#);
            let _ = write!(
                out,
                concat!(
                    r#"<saml:Assertion AssertionID="{id}" IssueInstant="{now}" Issuer="{issuer}" MajorVersion="1" MinorVersion="1">"#,
                    r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{until}"><saml:AudienceRestrictionCondition>"#,
                    r#"<saml:Audience>{target}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>"#,
                    r#"<saml:AuthenticationStatement AuthenticationInstant="{auth}" "#,
                    r#"AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password">{subject}</saml:AuthenticationStatement>"#
                ),
                id = ids.1,
                now = instant(now),
                until = instant(now + Duration::seconds(30)),
                issuer = escape(issuer),
                target = escape(target),
                auth = instant(s.authentication_date),
                subject = subject(&s.user),
            );
            if !s.attributes.is_empty() {
                out.push_str("<saml:AttributeStatement>");
                out.push_str(&subject(&s.user));
                for (name, values) in &s.attributes {
                    let _ = write!(
                        out,
                        r#"<saml:Attribute AttributeName="{}" AttributeNamespace="{ATTRIBUTE_NAMESPACE}">"#,
                        escape(name.as_str())
                    );
                    for v in values {
                        let _ = write!(
                            out,
                            r#"<saml:AttributeValue xsi:type="xsd:string">{}</saml:AttributeValue>"#,
                            escape(v.as_str())
                        );
                    }
                    out.push_str("</saml:Attribute>");
                }
                out.push_str("</saml:AttributeStatement>");
            }
            out.push_str("</saml:Assertion>");
        }
        Err(f) => {
            let second = match f.code {
                FailureCode::InternalError => None,
                FailureCode::InvalidRequest | FailureCode::InvalidTicketSpec => None,
                _ => Some("samlp:RequestDenied"),
            };
            let top = if f.code == FailureCode::InternalError { "samlp:Responder" } else { "samlp:Requester" };
            let _ = write!(out, r#"<samlp:Status><samlp:StatusCode Value="{top}">"#);
            if let Some(second) = second {
                let _ = write!(out, r#"<samlp:StatusCode Value="{second}"/>"#);
            }
            let _ = write!(
                out,
                "</samlp:StatusCode><samlp:StatusMessage>{}: {}</samlp:StatusMessage></samlp:Status>",
                f.code.as_str(),
                escape(f.description.as_str())
            );
        }
    }
    out.push_str("</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>");
    out
}

/// A random XML id (`_` and random characters; SAML ids must not start with
/// a digit). Falls back to a time-based id if the OS generator fails, since
/// an id needs to be unique, not secret.
fn xml_id(prefix: &str) -> String {
    idp_core::secret::random_token(32)
        .map(|t| format!("{prefix}{t}"))
        .unwrap_or_else(|_| format!("{prefix}{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()))
}

fn subject(user: &str) -> String {
    format!(
        concat!(
            "<saml:Subject><saml:NameIdentifier>{}</saml:NameIdentifier><saml:SubjectConfirmation>",
            "<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:artifact</saml:ConfirmationMethod>",
            "</saml:SubjectConfirmation></saml:Subject>"
        ),
        escape(user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body>
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_192.168.16.51.1024506224022" IssueInstant="2002-06-19T17:03:44.022Z">
<samlp:AssertionArtifact>ST-1-abc</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn reads_the_request() {
        let r = parse_request(REQUEST);
        assert_eq!(r.artifact.as_deref(), Some("ST-1-abc"));
        assert_eq!(r.request_id.as_deref(), Some("_192.168.16.51.1024506224022"));
        assert_eq!(parse_request("not xml <<"), SamlRequest::default());
    }

    #[test]
    fn success_and_failure() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap();
        let ok: Result<Success, Failure> = Ok(Success {
            user: "j.d".into(),
            authentication_date: now,
            from_new_login: true,
            attributes: vec![("classes".into(), vec!["3A".into(), "3<B".into()])],
            proxy_granting_ticket: None,
            proxies: vec![],
            authentication_methods: vec![],
        });
        let x = saml_response(&ok, &parse_request(REQUEST), "https://s/", "idp", now, ("_r".into(), "_a".into()));
        assert!(x.contains(r#"<samlp:StatusCode Value="samlp:Success"/>"#));
        assert!(x.contains(r#"InResponseTo="_192.168.16.51.1024506224022""#));
        assert!(x.contains("<saml:NameIdentifier>j.d</saml:NameIdentifier>"));
        assert_eq!(x.matches("<saml:AttributeValue").count(), 2);
        assert!(x.contains("3&lt;B"));
        let ko: Result<Success, Failure> = Err(Failure::new(FailureCode::InvalidTicket, "gone"));
        let x = saml_response(&ko, &SamlRequest::default(), "", "idp", now, ("_r".into(), "_a".into()));
        assert!(x.contains("samlp:RequestDenied") && !x.contains("Assertion"));
    }
}
