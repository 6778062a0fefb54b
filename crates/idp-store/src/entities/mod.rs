//! sea-orm entities: the rows as stored. Conversion to and from the domain
//! types lives with each repository.

pub mod account;
pub mod oidc_client;
pub mod oidc_key;
pub mod pseudonym;
pub mod registry_version;
pub mod saml_sp;
pub mod server_secret;
pub mod service;
