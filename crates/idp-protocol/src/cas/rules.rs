//! The per-service rules applied when a ticket is issued or validated: who
//! may use the service, and what identifies the user to it.

use idp_core::access::{Denial, UserId};
use idp_core::account::Account;
use idp_core::pseudonym::new_pseudonym;
use idp_core::release;
use idp_core::service::Service;

use super::Cas;

/// What a service receives about the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The login, or the account's pseudonym for the service.
    pub user: String,
    /// Released attributes, in the service's order, under their released names.
    pub attributes: Vec<(String, Vec<String>)>,
}

impl Cas {
    /// Why `account` may not get tickets for `service`, if it may not.
    pub fn access_denial(&self, service: &Service, account: &Account) -> Option<Denial> {
        service.policy.access.check(account).err()
    }

    /// The user identifier and attributes `service` receives about
    /// `account`. The pseudonym is looked up (or created) only when the
    /// service's policy needs it.
    pub async fn released(&self, service: &Service, account: &Account) -> idp_core::Result<Released> {
        let pseudonym = if release::needs_pseudonym(service) {
            Some(self.pseudonyms.get_or_create(&service.id, account.id, new_pseudonym()?).await?)
        } else {
            None
        };
        let user = match (service.policy.user_id, &pseudonym) {
            (UserId::Pseudonym, Some(p)) => p.clone(),
            _ => account.login.as_str().to_owned(),
        };
        Ok(Released { user, attributes: release::release_with(account, service, pseudonym.as_deref()) })
    }
}
