use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_sps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    #[sea_orm(unique)]
    pub entity_id: String,
    /// The SP's metadata document, as registered.
    pub metadata: String,
    /// JSON: NameID, encryption, signed requests, IdP-initiated login.
    pub options: String,
    /// JSON list of release rules.
    pub attributes: String,
    /// JSON: access rules and SSO (see `service_policy`).
    pub policy: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
