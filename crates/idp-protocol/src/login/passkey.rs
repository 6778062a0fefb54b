//! The passkey at the second step of a login: the options for the
//! browser, then its assertion, which goes on with the login like a right
//! code (`amr` `pwd` + `hwk`); and a passkey as the enrolment the policy
//! requires, beside TOTP.

use idp_core::account::Account;
use idp_core::second_factor::AMR_PASSWORD;

use super::{CodeRefusal, LoginNext, LoginPipeline, LoginStep};
use crate::Result;
use crate::passkeys::{Challenge, Registration};

impl LoginPipeline {
    /// `POST /cas/login/cle/options`: the challenge for the pending login
    /// `token`; `None` when it is unknown, spent or expired, or the person
    /// has no passkey.
    pub async fn passkey_options(&self, token: &str) -> Result<Option<Challenge>> {
        let pending = self.second_factor.pending_login(token).await?.filter(|(p, _)| p.enrolment.is_none());
        let Some((_, account)) = pending else { return Ok(None) };
        self.passkeys.start_authentication(&account).await
    }

    /// `POST /cas/login/cle`: the browser's assertion `response` for the
    /// challenge `challenge` of the pending login `token`, from `source`.
    /// Accepted, the login goes on where it stopped, and the browser is
    /// trusted when `remember` (its User-Agent) is given.
    pub async fn with_passkey(
        &self,
        token: &str,
        (challenge, response): (&str, &str),
        source: &str,
        tgc: Option<&str>,
        remember: Option<&str>,
    ) -> Result<LoginStep> {
        let pending = self.second_factor.pending_login(token).await?.filter(|(p, _)| p.enrolment.is_none());
        let Some((_, account)) = pending else { return Ok(LoginNext::CodeExpired.into()) };
        match self.passkeys.finish_authentication(&account, challenge, response, source).await? {
            Ok(factor) => {
                let amr = vec![AMR_PASSWORD.to_owned(), factor.to_owned()];
                self.after_factor(token, account, amr, tgc, remember).await
            }
            Err(refusal) => self.ask_code_again(token, &account, refusal.into()).await,
        }
    }

    /// `POST /cas/login/enrolement/cle/options`: the registration challenge
    /// of the enrolment the policy requires at the pending login `token`.
    pub async fn enrolment_passkey_options(&self, token: &str) -> Result<Option<Challenge>> {
        let Some((pending, account)) = self.second_factor.pending_login(token).await? else { return Ok(None) };
        if pending.enrolment.is_none() || pending.amr.is_some() {
            return Ok(None);
        }
        self.passkeys.start_registration(&account).await
    }

    /// `POST /cas/login/enrolement/cle`: a passkey named `name` registered
    /// as the enrolment the policy requires; the recovery codes are shown,
    /// then the login goes on.
    pub async fn enrol_passkey_at_login(
        &self,
        token: &str,
        challenge: &str,
        name: &str,
        response: &str,
    ) -> Result<LoginStep> {
        let mfa = &self.second_factor;
        let Some((pending, account)) = mfa.pending_login(token).await? else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let Some(enrolment) = pending.enrolment.clone().filter(|_| pending.amr.is_none()) else {
            return Ok(LoginNext::CodeExpired.into());
        };
        match self.passkeys.finish_registration(&account, challenge, name, response).await? {
            Registration::Added { recovery_codes } => {
                let amr = vec![AMR_PASSWORD.to_owned(), idp_core::second_factor::AMR_PASSKEY.to_owned()];
                mfa.passed(token, pending, amr).await?;
                let codes = recovery_codes.unwrap_or_default();
                Ok(LoginNext::ShowRecoveryCodes { token: token.to_owned(), codes }.into())
            }
            Registration::Refused(refusal) => self.enrol_again(token, &account, &enrolment, refusal.into()).await,
        }
    }

    /// The code page again, after `refused`.
    pub(super) async fn ask_code_again(
        &self,
        token: &str,
        account: &Account,
        refused: CodeRefusal,
    ) -> Result<LoginStep> {
        let passkey = self.passkeys.offered_to(account).await?;
        Ok(LoginNext::AskCode { token: token.to_owned(), refused: Some(refused), passkey }.into())
    }

    /// The enrolment page again (the same TOTP offer), after `refused`.
    pub(super) async fn enrol_again(
        &self,
        token: &str,
        account: &Account,
        enrolment: &str,
        refused: CodeRefusal,
    ) -> Result<LoginStep> {
        let Some(offer) = self.second_factor.pending_offer(account, enrolment).await? else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let passkey = self.passkeys.enabled();
        let refused = Some(refused);
        Ok(LoginNext::MustEnrol { token: token.to_owned(), offer: Box::new(offer), refused, passkey }.into())
    }
}
