//! [`AdminRepository`] on sea-orm: the help desk's roles (`admin_roles`),
//! its account search over `accounts`, and its audit trail
//! (`admin_audit`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use idp_core::Result;
use idp_core::account::Account;
use idp_core::admin::{AccountFilter, AdminGrant, AdminRepository, AuditEntry, CLASS_ATTRIBUTE, Scope};

use crate::entities::account::{self, Entity as Accounts};
use crate::storage;

mod role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admin_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: i64,
        pub global: bool,
        pub schools: String,
        pub granted_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod audit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admin_audit")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: DateTimeUtc,
        pub actor: String,
        pub action: String,
        pub target: String,
        pub source: String,
        pub detail: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Roles, search and audit trail in the SQL database.
pub struct SqlAdmins {
    db: DatabaseConnection,
}

impl SqlAdmins {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn scope(row: &role::Model) -> Result<Scope> {
    if row.global {
        return Ok(Scope::Global);
    }
    Ok(Scope::Schools(serde_json::from_str(&row.schools).map_err(idp_core::Error::Json)?))
}

/// `%needle%` for LIKE, lower-cased, with LIKE's wildcards escaped.
fn contains(needle: &str) -> LikeExpr {
    contains_exactly(&needle.to_lowercase())
}

/// `%needle%` for LIKE, with LIKE's wildcards escaped.
fn contains_exactly(needle: &str) -> LikeExpr {
    let mut pattern = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('\\')
}

#[async_trait]
impl AdminRepository for SqlAdmins {
    async fn grant(&self, account_id: i64, scope: &Scope, at: DateTime<Utc>) -> Result<()> {
        role::Entity::delete_by_id(account_id).exec(&self.db).await.map_err(storage)?;
        let schools = serde_json::to_string(scope.schools().unwrap_or_default()).map_err(idp_core::Error::Json)?;
        let row = role::ActiveModel {
            account_id: Set(account_id),
            global: Set(*scope == Scope::Global),
            schools: Set(schools),
            granted_at: Set(at),
        };
        row.insert(&self.db).await.map_err(storage)?;
        Ok(())
    }

    async fn revoke(&self, account_id: i64) -> Result<bool> {
        let done = role::Entity::delete_by_id(account_id).exec(&self.db).await.map_err(storage)?;
        Ok(done.rows_affected > 0)
    }

    async fn scope_of(&self, account_id: i64) -> Result<Option<Scope>> {
        let row = role::Entity::find_by_id(account_id).one(&self.db).await.map_err(storage)?;
        row.as_ref().map(scope).transpose()
    }

    async fn list(&self) -> Result<Vec<AdminGrant>> {
        let rows = role::Entity::find().all(&self.db).await.map_err(storage)?;
        let mut grants = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(account) = Accounts::find_by_id(row.account_id).one(&self.db).await.map_err(storage)? else {
                continue;
            };
            let scope = scope(&row)?;
            grants.push(AdminGrant {
                account_id: row.account_id,
                login: account.login,
                scope,
                granted_at: row.granted_at,
            });
        }
        grants.sort_by(|a, b| a.login.cmp(&b.login));
        Ok(grants)
    }

    async fn search(&self, schools: Option<&[String]>, filter: &AccountFilter, limit: u64) -> Result<Vec<Account>> {
        let lower = |c: account::Column| Expr::expr(Func::lower(Expr::col(c)));
        let needle = &filter.text;
        let text = Condition::any()
            .add(account::Column::LoginCanonical.like(contains(needle)))
            .add(lower(account::Column::GivenName).like(contains(needle)))
            .add(lower(account::Column::FamilyName).like(contains(needle)));
        let mut query = Accounts::find().filter(text);
        if let Some(profile) = filter.profile {
            query = query.filter(account::Column::Profile.eq(profile.as_str()));
        }
        if let Some(state) = filter.state {
            query = query.filter(account::Column::State.eq(state.as_str()));
        }
        if let Some(class) = &filter.class {
            // `attributes` holds a JSON object: the class as the end of a
            // JSON string (`…3A"`, also matching `"0370001A$3A"`) narrows
            // the rows; the console keeps those whose class attribute
            // holds it.
            let quoted = serde_json::to_string(class.trim()).map_err(idp_core::Error::Json)?;
            let quoted = quoted.strip_prefix('"').unwrap_or(&quoted);
            query = query
                .filter(account::Column::Attributes.like(contains_exactly(&format!("\"{CLASS_ATTRIBUTE}\""))))
                .filter(account::Column::Attributes.like(contains_exactly(quoted)));
        }
        if let Some(uais) = schools {
            // `schools` holds a JSON array of UAIs, which are letters and
            // digits only: `"UAI"` with its quotes matches one element.
            let any = uais.iter().fold(Condition::any(), |c, uai| {
                c.add(account::Column::Schools.like(LikeExpr::new(format!("%\"{uai}\"%"))))
            });
            query = query.filter(any);
        }
        let rows =
            query.order_by_asc(account::Column::LoginCanonical).limit(limit).all(&self.db).await.map_err(storage)?;
        rows.into_iter().map(crate::accounts::to_domain).collect()
    }

    async fn record(&self, entry: &AuditEntry) -> Result<()> {
        let cut = |s: &str, n: usize| crate::audit::printable(s, n);
        let row = audit::ActiveModel {
            at: Set(entry.at),
            actor: Set(cut(&entry.actor, 60)),
            action: Set(cut(&entry.action, 30)),
            target: Set(cut(&entry.target, 60)),
            source: Set(cut(&entry.source, 60)),
            detail: Set(cut(&entry.detail, 500)),
            ..Default::default()
        };
        row.insert(&self.db).await.map_err(storage)?;
        Ok(())
    }

    async fn audit_since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<AuditEntry>> {
        let mut query = audit::Entity::find().order_by_asc(audit::Column::Id);
        if let Some(since) = since {
            query = query.filter(audit::Column::At.gte(since));
        }
        let rows = query.all(&self.db).await.map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: r.at,
                actor: r.actor,
                action: r.action,
                target: r.target,
                source: r.source,
                detail: r.detail,
            })
            .collect())
    }
}
