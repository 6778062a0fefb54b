//! One service provider towards one identity provider: what the upstream
//! wiring calls. It holds our entity id and endpoints, our keys and the
//! IdP's metadata, and turns each step of SP-initiated Web SSO and single
//! logout into one call.

use chrono::{DateTime, Utc};

use crate::keys::KeyPair;
use crate::metadata::{IdpMetadata, SpMetadata};
use crate::request::{
    AuthnRequest, IncomingLogout, IncomingLogoutResponse, Kind, LogoutRequest, logout_response_xml,
    parse_logout_response, read_redirect, redirect_url,
};
use crate::response::{Assertion, Expected, NameId, decode_post, validate};
use crate::{Error, Result};

/// Our service provider for one upstream.
#[derive(Debug, Clone)]
pub struct ServiceProvider {
    /// Our entity id: the URL our metadata is served at.
    pub entity_id: String,
    /// Where responses are posted (HTTP-POST).
    pub acs_url: String,
    /// Where the IdP sends logout requests and answers (HTTP-Redirect).
    pub slo_url: String,
    /// Our key pairs, the current one first; older ones still decrypt
    /// during a rollover.
    pub keys: Vec<KeyPair>,
    pub idp: IdpMetadata,
    /// Our name, shown by the IdP.
    pub service_name: String,
    /// The attributes our metadata asks for.
    pub requested_attributes: Vec<String>,
}

impl ServiceProvider {
    /// The service provider of upstream `id` under `public_base`
    /// (`https://ent.example.fr`): `/upstream/<id>/metadata`, `/acs`, `/slo`.
    pub fn new(public_base: &str, id: &str, keys: Vec<KeyPair>, idp: IdpMetadata) -> Result<ServiceProvider> {
        if keys.is_empty() {
            return Err(Error::Key("no key pair".into()));
        }
        let base = format!("{}/upstream/{id}", public_base.trim_end_matches('/'));
        Ok(ServiceProvider {
            entity_id: format!("{base}/metadata"),
            acs_url: format!("{base}/acs"),
            slo_url: format!("{base}/slo"),
            keys,
            idp,
            service_name: String::new(),
            requested_attributes: Vec::new(),
        })
    }

    fn current(&self) -> Result<&KeyPair> {
        self.keys.first().ok_or(Error::Key("no key pair".into()))
    }

    /// Our metadata document.
    pub fn metadata_xml(&self) -> Result<String> {
        let key = self.current()?;
        SpMetadata {
            entity_id: &self.entity_id,
            acs_url: &self.acs_url,
            slo_url: self.idp.slo_redirect().map(|_| self.slo_url.as_str()),
            signing: key,
            encryption: key,
            service_name: &self.service_name,
            requested_attributes: &self.requested_attributes,
        }
        .to_xml()
    }

    /// The IdP's metadata has reached its `validUntil` (checked when read,
    /// and again at each use: a server runs longer than metadata lives).
    fn check_metadata(&self, now: DateTime<Utc>) -> Result<()> {
        match self.idp.valid_until {
            Some(t) if t <= now => Err(Error::MetadataExpired),
            _ => Ok(()),
        }
    }

    /// The IdP URL the browser goes to: an AuthnRequest with `request_id`,
    /// by HTTP-Redirect, signed when the IdP wants signed requests.
    /// Refused once the IdP's metadata has expired.
    pub fn login_url(&self, request_id: &str, relay_state: &str, now: DateTime<Utc>) -> Result<String> {
        self.check_metadata(now)?;
        let sso = self.idp.sso_redirect().ok_or(Error::Metadata("no HTTP-Redirect single sign-on".into()))?;
        let xml = AuthnRequest {
            id: request_id,
            issuer: &self.entity_id,
            destination: sso,
            acs_url: &self.acs_url,
            now,
            force_authn: false,
        }
        .to_xml();
        let key = self.idp.want_authn_requests_signed.then(|| self.current()).transpose()?;
        redirect_url(sso, Kind::Request, &xml, Some(relay_state), key)
    }

    /// The posted `SAMLResponse` field, answering our request `request_id`.
    pub fn accept(&self, saml_response: &str, request_id: &str, now: DateTime<Utc>) -> Result<Assertion> {
        self.check_metadata(now)?;
        let xml = decode_post(saml_response)?;
        validate(
            &xml,
            &Expected {
                idp: &self.idp,
                sp_entity_id: &self.entity_id,
                acs_url: &self.acs_url,
                request_id,
                decryption_keys: &self.keys,
                now,
            },
        )
    }

    /// Where to send the browser to end the person's IdP session, when the
    /// IdP offers single logout by HTTP-Redirect (signed request), with
    /// the `ID` of that request (its answer's `InResponseTo`).
    pub fn logout_url(
        &self,
        name_id: &NameId,
        session_index: Option<&str>,
        relay_state: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let Some(slo) = self.idp.slo_redirect() else { return Ok(None) };
        let id = crate::new_id()?;
        let xml =
            LogoutRequest { id: &id, issuer: &self.entity_id, destination: slo, now, name_id, session_index }.to_xml();
        let url = redirect_url(slo, Kind::Request, &xml, relay_state, Some(self.current()?))?;
        Ok(Some((id, url)))
    }

    /// The IdP's `LogoutResponse` received at our SLO endpoint (its raw
    /// query string). It must be signed by the IdP, as its requests.
    pub fn read_logout_response(&self, raw_query: &str) -> Result<(IncomingLogoutResponse, Option<String>)> {
        let received = read_redirect(raw_query, Kind::Response, &self.idp.signing_certs)?;
        if !received.signed {
            return Err(Error::Unsigned);
        }
        let answer = parse_logout_response(&received.xml, &self.idp.entity_id, &self.slo_url)?;
        Ok((answer, received.relay_state))
    }

    /// An IdP's `LogoutRequest` received at our SLO endpoint (its raw query
    /// string). It must be signed by the IdP: an unsigned one would let
    /// anyone end a person's session.
    pub fn read_logout_request(&self, raw_query: &str, now: DateTime<Utc>) -> Result<(IncomingLogout, Option<String>)> {
        let received = read_redirect(raw_query, Kind::Request, &self.idp.signing_certs)?;
        if !received.signed {
            return Err(Error::Unsigned);
        }
        let logout = crate::request::parse_logout_request(&received.xml, &self.idp.entity_id, &self.slo_url, now)?;
        Ok((logout, received.relay_state))
    }

    /// Our signed answer to the IdP's logout request `in_response_to`:
    /// Success when a session `ended`.
    pub fn logout_response_url(
        &self,
        in_response_to: &str,
        relay_state: Option<&str>,
        ended: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let Some(slo) = self.idp.slo_redirect() else { return Ok(None) };
        let xml = logout_response_xml(&crate::new_id()?, in_response_to, &self.entity_id, slo, ended, now);
        redirect_url(slo, Kind::Response, &xml, relay_state, Some(self.current()?)).map(Some)
    }
}
