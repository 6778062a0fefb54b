//! `/gestion/`: the school help desk, on the SSO session. An administrator
//! (a role given by `idp admin grant`) finds the accounts of their schools,
//! resets them, prints first-login letters and imports the school's CSV
//! file (`import.rs`, with a preview). The rules (which accounts
//! an administrator sees, when the password is asked again) are those of
//! [`idp_core::admin::Console`]; the handlers here map its outcomes to
//! pages. An account outside the administrator's schools is answered as a
//! page that does not exist.

pub mod account;
pub mod create;
pub mod import;
pub mod letter;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use minijinja::{Value, context};
use serde::Deserialize;

use idp_core::account::Account;
use idp_core::account::{AccountState, Profile};
use idp_core::admin::{AccountFilter, Administrator, ConsoleError, SEARCH_LIMIT, progress};
use idp_core::second_factor::has_second_factor;
use idp_core::session::SsoSession;

use crate::compte::page;
use crate::cookies;
use crate::error::{ErrorCode, WebError};
use crate::net::client_ip;
use crate::params::Params;
use crate::state::AppState;

/// The console's templates (checked at start).
pub const TEMPLATES: &[&str] = &[
    "gestion.html",
    "gestion_compte.html",
    "gestion_lettres.html",
    "mots_de_passe_provisoires.html",
    "gestion_tableau.html",
    "gestion_nouveau.html",
    "gestion_import.html",
    "gestion_import_apercu.html",
    "gestion_import_fait.html",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/gestion", get(|| async { Redirect::permanent("/gestion/") }))
        .route("/gestion/", get(search))
        .route("/gestion/tableau-de-bord", get(dashboard))
        .route("/gestion/nouveau-compte", get(create::form).post(create::create))
        .route("/gestion/import", get(import::form))
        .route("/gestion/import/confirmer", post(import::confirm))
        .route("/gestion/compte/{login}", get(account::show))
        .route("/gestion/compte/{login}/reinitialiser", post(account::reset))
        .route("/gestion/compte/{login}/etat", post(account::change_state))
        .route("/gestion/compte/{login}/deux-etapes", post(account::remove_second_factor))
        .route("/gestion/lettres", post(account::batch))
        .route("/gestion/lettres/{code}", get(account::letters))
}

/// A signed-in administrator, with the session and the cookies. Without a
/// session the request gets the page asking to log in (401); a session
/// of someone who holds no role gets a French 403 page.
pub struct Admin {
    pub admin: Administrator,
    pub session: SsoSession,
    pub jar: CookieJar,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let tgc = cookies::session_id(&jar, state.config.https());
        let (session, account) = match state.cas.current_session(tgc.as_deref()).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(refusal(state, jar, StatusCode::UNAUTHORIZED)),
            Err(e) => return Err(WebError::from(e).into_response()),
        };
        let source = client_ip(parts, &state.config.trusted_proxies);
        let admin = match state.console.administrator(account, source).await {
            Ok(Some(admin)) => admin,
            Ok(None) => return Err(refusal(state, jar, StatusCode::FORBIDDEN)),
            Err(e) => return Err(WebError::from(e).into_response()),
        };
        // The console is never reached without the second factor the
        // policy requires of administrators.
        if state.second_factor.policy.admins_required() && !has_second_factor(&session.amr) {
            return Err(second_factor_first(state, jar, admin.account.id).await);
        }
        Ok(Admin { admin, session, jar })
    }
}

/// An administrator whose session has no second factor: to the enrolment
/// in Mon compte when none is enrolled, else a page asking to log in again
/// (the code is asked then).
async fn second_factor_first(state: &AppState, jar: CookieJar, account_id: i64) -> Response {
    match state.second_factor.enrolled(account_id).await {
        Ok(enrolled) if !enrolled.any() => (jar, Redirect::to("/compte/deux-etapes")).into_response(),
        Ok(_) => {
            let ctx = context! {
                title => "Validation en deux étapes nécessaire",
                message => "La gestion des comptes demande la validation en deux étapes. Connectez-vous à nouveau \
                            avec votre mot de passe et votre code de vérification.",
                back_url => "/cas/login?renew=true",
            };
            page(state, jar, "error.html", StatusCode::FORBIDDEN, ctx).unwrap_or_else(IntoResponse::into_response)
        }
        Err(e) => WebError::from(e).into_response(),
    }
}

/// The page of a person who is not signed in (401) or holds no role (403).
fn refusal(state: &AppState, jar: CookieJar, status: StatusCode) -> Response {
    let ctx = if status == StatusCode::UNAUTHORIZED {
        context! {
            title => "Connexion nécessaire",
            message => "Pour accéder à la gestion des comptes, connectez-vous d'abord à l'ENT, puis revenez sur \
                        cette page.",
            back_url => "/cas/login",
        }
    } else {
        context! {
            title => "Accès réservé",
            message => "La gestion des comptes est réservée aux administrateurs ENT des établissements. Si vous \
                        devez y accéder, demandez-le au responsable de l'ENT de votre établissement.",
        }
    };
    page(state, jar, "error.html", status, ctx).unwrap_or_else(IntoResponse::into_response)
}

/// A refusal of the console as a response: an account it does not show is
/// a page that does not exist.
impl From<ConsoleError> for WebError {
    fn from(e: ConsoleError) -> Self {
        match e {
            ConsoleError::NotFound => WebError::NotFound,
            ConsoleError::Invalid(_) | ConsoleError::LoginTaken => {
                WebError::bad_request(ErrorCode::BadForm, "Un champ du formulaire n'est pas valide.")
            }
            ConsoleError::Core(e) => e.into(),
            other => WebError::internal(ErrorCode::Flow, other),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    q: String,
    /// A profile code (`eleve`…), empty for any.
    profil: String,
    /// A state code (`active`…), empty for any.
    etat: String,
    classe: String,
}

impl SearchQuery {
    /// The filter asked for; an unknown profile or state code counts as
    /// none.
    fn filter(&self) -> AccountFilter {
        AccountFilter {
            text: self.q.trim().to_owned(),
            profile: Profile::parse(&self.profil).ok(),
            state: AccountState::parse(&self.etat).ok(),
            class: Some(self.classe.trim().to_owned()).filter(|c| !c.is_empty()),
        }
    }
}

/// `GET /gestion/?q=…&profil=…&etat=…&classe=…`: the search form, and the
/// accounts found (at most [`SEARCH_LIMIT`], by login).
pub async fn search(
    State(state): State<AppState>,
    Admin { admin, jar, .. }: Admin,
    Params(query): Params<SearchQuery>,
) -> Result<Response, WebError> {
    let filter = query.filter();
    let searched = !filter.text.is_empty() || filter.has_criteria();
    let (status, found, error) = match searched {
        false => (StatusCode::OK, Vec::new(), None),
        true => match state.console.search(&admin, &filter).await {
            Ok(found) => (StatusCode::OK, found, None),
            Err(ConsoleError::QueryTooShort) => {
                (StatusCode::OK, Vec::new(), Some("Saisissez au moins deux caractères."))
            }
            Err(ConsoleError::Throttled) => (
                StatusCode::TOO_MANY_REQUESTS,
                Vec::new(),
                Some("Trop de recherches en peu de temps. Veuillez patienter une minute avant de réessayer."),
            ),
            Err(e) => return Err(e.into()),
        },
    };
    let results: Vec<Value> = found.iter().map(|a| summary(a, None)).collect();
    let capped = results.len() as u64 >= SEARCH_LIMIT;
    let profiles: Vec<_> = Profile::ALL.iter().map(|p| (p.as_str(), profile_label(*p))).collect();
    let states: Vec<_> = AccountState::ALL.iter().map(|s| (s.as_str(), state_label(*s))).collect();
    let ctx = context! {
        searched, q => query.q, profil => query.profil, etat => query.etat, classe => query.classe,
        profiles, states, results, error, capped, limit => SEARCH_LIMIT,
        schools => admin.scope.describe(), admin_name => admin.account.display_name(),
    };
    page(&state, jar, "gestion.html", status, ctx)
}

/// `GET /gestion/tableau-de-bord`: each school's accounts by profile and
/// state, activation rate, accounts never used, recent resets.
pub async fn dashboard(State(state): State<AppState>, Admin { admin, jar, .. }: Admin) -> Result<Response, WebError> {
    let schools: Vec<Value> = state
        .console
        .dashboard(&admin)
        .await?
        .into_iter()
        .map(|f| {
            let profiles: Vec<_> = f
                .by_profile
                .iter()
                .filter_map(|(code, n)| Some((profile_label(idp_core::account::Profile::parse(code).ok()?), *n)))
                .collect();
            let states: Vec<_> = f
                .by_state
                .iter()
                .filter_map(|(code, n)| Some((state_label(idp_core::account::AccountState::parse(code).ok()?), *n)))
                .collect();
            context! { figures => Value::from(minijinja::value::Serde(&f)), profiles, states }
        })
        .collect();
    let ctx = context! { schools, days => idp_core::admin::RECENT_DAYS };
    page(&state, jar, "gestion_tableau.html", StatusCode::OK, ctx)
}

/// What the console shows of an account: never a password, an answer or a
/// hash. `email_verified` is known on the account's own page only.
pub fn summary(a: &Account, email_verified: Option<bool>) -> Value {
    let progress = email_verified.map(|verified| match progress(a, verified) {
        idp_core::admin::Progress::Provisioned => "Compte à activer (mot de passe provisoire)",
        idp_core::admin::Progress::EmailPending => "Activé, adresse électronique en attente de validation",
        idp_core::admin::Progress::Active => "Activé",
    });
    context! {
        login => a.login.as_str(),
        name => a.display_name(),
        profile => profile_label(a.profile),
        state => state_label(a.state),
        state_code => a.state.as_str(),
        schools => a.schools.join(", "),
        classes => a.attributes.get("ENTEleveClasses").map(|c| c.join(", ")),
        last_login => a.last_login_at.map(|t| t.format("%d/%m/%Y à %H:%M UTC").to_string()),
        progress,
    }
}

pub(crate) fn profile_label(p: idp_core::account::Profile) -> &'static str {
    use idp_core::account::Profile::*;
    match p {
        Eleve => "Élève",
        Parent => "Parent",
        Personnel => "Personnel",
        Autre => "Autre public",
    }
}

fn state_label(s: idp_core::account::AccountState) -> &'static str {
    use idp_core::account::AccountState::*;
    match s {
        Provisioned => "À activer",
        Active => "Actif",
        Reset => "Réinitialisé",
        Locked => "Verrouillé",
        Disabled => "Désactivé",
    }
}
