//! Wire formats of validation answers: CAS 1 text, CAS 2/3 XML (valid
//! against the CAS 3.0 response schema) and JSON.

use chrono::SecondsFormat;
use quick_xml::escape::escape;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

use super::validate::{Failure, Success};

/// Whether the XML answer carries `<cas:attributes>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attributes {
    Include,
    Omit,
}

/// CAS 1 `/validate`: `yes\n<user>\n` or `no\n`.
pub fn cas1(outcome: &Result<Success, Failure>) -> String {
    match outcome {
        Ok(s) => format!("yes\n{}\n", s.user),
        Err(_) => "no\n".to_owned(),
    }
}

/// CAS 2/3 XML. Attribute names were checked at registration to be XML
/// names; values and descriptions are escaped here.
pub fn xml(outcome: &Result<Success, Failure>, attributes: Attributes) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n");
    match outcome {
        Ok(s) => {
            out.push_str("  <cas:authenticationSuccess>\n");
            let _ = writeln!(out, "    <cas:user>{}</cas:user>", escape(s.user.as_str()));
            if attributes == Attributes::Include {
                out.push_str("    <cas:attributes>\n");
                let date = s.authentication_date.to_rfc3339_opts(SecondsFormat::Secs, true);
                let _ = writeln!(out, "      <cas:authenticationDate>{date}</cas:authenticationDate>");
                out.push_str("      <cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>\n");
                let _ = writeln!(out, "      <cas:isFromNewLogin>{}</cas:isFromNewLogin>", s.from_new_login);
                for method in &s.authentication_methods {
                    let _ =
                        writeln!(out, "      <cas:authenticationMethod>{}</cas:authenticationMethod>", escape(method));
                }
                for (name, values) in &s.attributes {
                    for value in values {
                        let _ = writeln!(out, "      <cas:{name}>{}</cas:{name}>", escape(value.as_str()));
                    }
                }
                out.push_str("    </cas:attributes>\n");
            }
            if let Some(iou) = &s.proxy_granting_ticket {
                let _ =
                    writeln!(out, "    <cas:proxyGrantingTicket>{}</cas:proxyGrantingTicket>", escape(iou.as_str()));
            }
            if !s.proxies.is_empty() {
                out.push_str("    <cas:proxies>\n");
                for proxy in &s.proxies {
                    let _ = writeln!(out, "      <cas:proxy>{}</cas:proxy>", escape(proxy.as_str()));
                }
                out.push_str("    </cas:proxies>\n");
            }
            out.push_str("  </cas:authenticationSuccess>\n");
        }
        Err(f) => {
            let _ = writeln!(
                out,
                "  <cas:authenticationFailure code=\"{}\">{}</cas:authenticationFailure>",
                f.code.as_str(),
                escape(f.description.as_str())
            );
        }
    }
    out.push_str("</cas:serviceResponse>\n");
    out
}

/// CAS 3 JSON: single values as strings, multiple values as arrays.
pub fn json(outcome: &Result<Success, Failure>) -> String {
    let body = match outcome {
        Ok(s) => {
            let mut attrs = Map::new();
            attrs.insert(
                "authenticationDate".into(),
                Value::String(s.authentication_date.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
            attrs.insert("longTermAuthenticationRequestTokenUsed".into(), Value::Bool(false));
            attrs.insert("isFromNewLogin".into(), Value::Bool(s.from_new_login));
            if !s.authentication_methods.is_empty() {
                let methods = s.authentication_methods.iter().cloned().map(Value::String).collect();
                attrs.insert("authenticationMethod".into(), Value::Array(methods));
            }
            for (name, values) in &s.attributes {
                let value = match values.as_slice() {
                    [one] => Value::String(one.clone()),
                    many => Value::Array(many.iter().cloned().map(Value::String).collect()),
                };
                attrs.insert(name.clone(), value);
            }
            let mut success = Map::new();
            success.insert("user".into(), Value::String(s.user.clone()));
            success.insert("attributes".into(), Value::Object(attrs));
            if let Some(iou) = &s.proxy_granting_ticket {
                success.insert("proxyGrantingTicket".into(), Value::String(iou.clone()));
            }
            if !s.proxies.is_empty() {
                success.insert("proxies".into(), s.proxies.iter().cloned().map(Value::String).collect());
            }
            json!({"serviceResponse": {"authenticationSuccess": success}})
        }
        Err(f) => {
            json!({"serviceResponse": {"authenticationFailure": {"code": f.code.as_str(), "description": f.description}}})
        }
    };
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::validate::FailureCode;
    use chrono::{TimeZone, Utc};

    fn success() -> Result<Success, Failure> {
        Ok(Success {
            user: "j.dupont".into(),
            authentication_date: Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap(),
            from_new_login: true,
            attributes: vec![
                ("given_name".into(), vec!["Jean & Co".into()]),
                ("school".into(), vec!["0370001A".into(), "0370002B".into()]),
            ],
            proxy_granting_ticket: None,
            proxies: vec![],
            authentication_methods: vec!["pwd".into(), "otp".into()],
        })
    }

    #[test]
    fn xml_success_has_the_required_attributes_first_and_escapes() {
        let x = xml(&success(), Attributes::Include);
        let date = x.find("authenticationDate").unwrap();
        let lt = x.find("longTermAuthenticationRequestTokenUsed").unwrap();
        let new = x.find("isFromNewLogin").unwrap();
        assert!(date < lt && lt < new);
        assert!(x.contains("<cas:given_name>Jean &amp; Co</cas:given_name>"));
        assert_eq!(x.matches("<cas:school>").count(), 2);
        assert!(!xml(&success(), Attributes::Omit).contains("cas:attributes"));
    }

    #[test]
    fn failures() {
        let f: Result<Success, Failure> =
            Err(Failure { code: FailureCode::InvalidTicket, description: "Ticket '<x>' not recognized".into() });
        assert!(
            xml(&f, Attributes::Include)
                .contains(r#"code="INVALID_TICKET">Ticket &apos;&lt;x&gt;&apos; not recognized"#)
        );
        assert_eq!(cas1(&f), "no\n");
        let j: Value = serde_json::from_str(&json(&f)).unwrap();
        assert_eq!(j["serviceResponse"]["authenticationFailure"]["code"], "INVALID_TICKET");
    }

    #[test]
    fn json_success() {
        let j: Value = serde_json::from_str(&json(&success())).unwrap();
        let s = &j["serviceResponse"]["authenticationSuccess"];
        assert_eq!(s["user"], "j.dupont");
        assert_eq!(s["attributes"]["given_name"], "Jean & Co");
        assert_eq!(s["attributes"]["school"][1], "0370002B");
        assert_eq!(s["attributes"]["isFromNewLogin"], true);
        assert_eq!(cas1(&success()), "yes\nj.dupont\n");
    }
}
