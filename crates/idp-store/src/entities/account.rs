use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub login: String,
    #[sea_orm(unique)]
    pub login_canonical: String,
    pub profile: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub schools: String,
    pub state: String,
    pub password_hash: Option<String>,
    pub provisional_hash: Option<String>,
    pub provisional_set_at: Option<DateTimeUtc>,
    pub cgu_version: Option<String>,
    pub cgu_accepted_at: Option<DateTimeUtc>,
    pub sessions_valid_after: DateTimeUtc,
    pub failed_logins: i32,
    pub attributes: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
