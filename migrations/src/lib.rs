//! Database migrations of idp, one per change, applied in order by
//! `idp migrate` and at server start. They run on SQLite and PostgreSQL
//! alike: only portable column types are used, and times are stored as
//! timestamps with time zone (text in SQLite).

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_accounts;
mod m20261128_000002_services;
mod m20261128_100001_account_lifecycle;
mod m20261128_200001_oidc;
mod m20261128_300001_service_policy;
mod m20261128_300002_pseudonyms;
mod m20261128_400001_registry_version;
mod m20261201_000001_account_version;
mod m20261201_500001_oidc_subject_type;
mod m20261202_000001_server_secrets;
mod m20261202_100001_cache_versions;
mod m20261202_600001_admin;
mod m20261203_000001_second_factor;
mod m20261203_000002_saml_sps;
mod m20261203_100001_passkey_use;
mod m20261203_200001_trusted_devices;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_accounts::Migration),
            Box::new(m20261128_000002_services::Migration),
            Box::new(m20261128_100001_account_lifecycle::Migration),
            Box::new(m20261128_200001_oidc::Migration),
            Box::new(m20261128_300001_service_policy::Migration),
            Box::new(m20261128_300002_pseudonyms::Migration),
            Box::new(m20261128_400001_registry_version::Migration),
            Box::new(m20261201_000001_account_version::Migration),
            Box::new(m20261201_500001_oidc_subject_type::Migration),
            Box::new(m20261202_000001_server_secrets::Migration),
            Box::new(m20261202_100001_cache_versions::Migration),
            Box::new(m20261202_600001_admin::Migration),
            Box::new(m20261203_000001_second_factor::Migration),
            Box::new(m20261203_000002_saml_sps::Migration),
            Box::new(m20261203_100001_passkey_use::Migration),
            Box::new(m20261203_200001_trusted_devices::Migration),
        ]
    }
}
