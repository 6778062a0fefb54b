//! [`AccountSecurityRepository`] on sea-orm: the `account_security` row of
//! each account (validated e-mail, secret questions) and the
//! `login_history` table (the last logins, for "Mon compte").

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use idp_core::lifecycle::{AccountExtras, LoginRecord, SecretAnswers};
use idp_core::ports::AccountSecurityRepository;
use idp_core::{Error, Result};

use crate::storage;

mod security_row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_security")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: i64,
        pub email_verified: Option<String>,
        pub email_verified_at: Option<DateTimeUtc>,
        pub questions: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod history_row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account_id: i64,
        pub at: DateTimeUtc,
        pub source: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How many logins are kept per account.
const HISTORY: u64 = 20;

/// The adapter.
pub struct SqlAccountSecurity {
    db: DatabaseConnection,
}

impl SqlAccountSecurity {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AccountSecurityRepository for SqlAccountSecurity {
    async fn get(&self, account_id: i64) -> Result<AccountExtras> {
        let Some(row) = security_row::Entity::find_by_id(account_id).one(&self.db).await.map_err(storage)? else {
            return Ok(AccountExtras::default());
        };
        let questions = match row.questions {
            Some(json) => Some(serde_json::from_str::<SecretAnswers>(&json).map_err(Error::Json)?),
            None => None,
        };
        Ok(AccountExtras { email_verified: row.email_verified, email_verified_at: row.email_verified_at, questions })
    }

    async fn save(&self, account_id: i64, extras: &AccountExtras) -> Result<()> {
        let questions = extras.questions.as_ref().map(serde_json::to_string).transpose().map_err(Error::Json)?;
        let row = security_row::ActiveModel {
            account_id: Set(account_id),
            email_verified: Set(extras.email_verified.clone()),
            email_verified_at: Set(extras.email_verified_at),
            questions: Set(questions),
        };
        security_row::Entity::insert(row)
            .on_conflict(
                OnConflict::column(security_row::Column::AccountId)
                    .update_columns([
                        security_row::Column::EmailVerified,
                        security_row::Column::EmailVerifiedAt,
                        security_row::Column::Questions,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn record_login(&self, account_id: i64, at: DateTime<Utc>, source: &str) -> Result<()> {
        let source: String = source.chars().take(64).collect();
        let row = history_row::ActiveModel {
            account_id: Set(account_id),
            at: Set(at),
            source: Set(source),
            ..Default::default()
        };
        history_row::Entity::insert(row).exec(&self.db).await.map_err(storage)?;
        // Keep the last ones only.
        let old: Vec<i64> = history_row::Entity::find()
            .select_only()
            .column(history_row::Column::Id)
            .filter(history_row::Column::AccountId.eq(account_id))
            .order_by_desc(history_row::Column::Id)
            .offset(HISTORY)
            // SQLite wants a LIMIT with an OFFSET.
            .limit(10_000)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        if !old.is_empty() {
            history_row::Entity::delete_many()
                .filter(history_row::Column::Id.is_in(old))
                .exec(&self.db)
                .await
                .map_err(storage)?;
        }
        Ok(())
    }

    async fn recent_logins(&self, account_id: i64, limit: u64) -> Result<Vec<LoginRecord>> {
        let rows = history_row::Entity::find()
            .filter(history_row::Column::AccountId.eq(account_id))
            .order_by_desc(history_row::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(|r| LoginRecord { at: r.at, source: r.source }).collect())
    }
}
