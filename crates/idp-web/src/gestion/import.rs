//! `/gestion/import`: an administrator imports the school's CSV file (the
//! format of `idp account import`). The file is read and compared with
//! the accounts first, and the preview shows what would change, writing
//! nothing; confirming applies that preview, once, and shows the created
//! accounts' provisional passwords with their letters to print. The rules
//! are [`idp_core::admin::Console::import_preview`] and
//! [`idp_core::admin::Console::import_confirm`]'s.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum_extra::extract::cookie::CookieJar;
use minijinja::{Value, context};
use serde::Deserialize;

use idp_core::admin::{ConsoleError, IMPORT_MAX_CREATED, IMPORT_MAX_ROWS, IMPORT_MINUTES, ImportDone, LETTER_MINUTES};
use idp_core::import::{Action, Plan};

use super::{Admin, profile_label};
use crate::compte::page;
use crate::csrf::{CsrfForm, CsrfMultipart};
use crate::error::WebError;
use crate::state::AppState;

/// The largest request the upload accepts (the file and the form's other
/// fields).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The upload, with its own body limit (the other routes keep 64 KiB).
pub fn upload_routes() -> Router<AppState> {
    Router::new().route("/gestion/import/apercu", post(preview)).layer(DefaultBodyLimit::max(MAX_BYTES))
}

/// `GET /gestion/import`: the upload form.
pub async fn form(State(state): State<AppState>, Admin { jar, .. }: Admin) -> Result<Response, WebError> {
    show_form(&state, jar, None, StatusCode::OK)
}

/// `POST /gestion/import/apercu` (`multipart/form-data`, the file in
/// `fichier`): the preview, or the form with what is wrong with the file.
pub async fn preview(
    State(state): State<AppState>,
    Admin { admin, session, jar }: Admin,
    CsrfMultipart(form): CsrfMultipart,
) -> Result<Response, WebError> {
    let Some(file) = form.file("fichier").filter(|f| !f.is_empty()) else {
        let error = "Choisissez le fichier CSV à importer.".to_owned();
        return show_form(&state, jar, Some(error), StatusCode::UNPROCESSABLE_ENTITY);
    };
    let refusal = match state.console.import_preview(&admin, file).await {
        Ok((plan, key)) => {
            let ctx =
                context! { key, needs_password => state.console.needs_password(&session), ..preview_context(&plan) };
            return page(&state, jar, "gestion_import_apercu.html", StatusCode::OK, ctx);
        }
        Err(ConsoleError::Import(e)) => format!("Ligne {} : {}. Rien n'a été importé.", e.line, e.problem),
        Err(ConsoleError::TooManyRows) => format!(
            "Le fichier compte plus de {IMPORT_MAX_ROWS} lignes : découpez-le en plusieurs fichiers. Rien n'a été \
             importé."
        ),
        Err(ConsoleError::TooManyCreated) => format!(
            "Ce fichier créerait plus de {IMPORT_MAX_CREATED} comptes, le plus qu'un import depuis la console \
             puisse créer : découpez-le, ou demandez à l'exploitant de l'ENT de l'importer avec la commande « idp \
             account import ». Rien n'a été importé."
        ),
        Err(ConsoleError::Throttled) => {
            let error = "Trop de tentatives en peu de temps. Veuillez patienter une minute avant de réessayer.";
            return show_form(&state, jar, Some(error.to_owned()), StatusCode::TOO_MANY_REQUESTS);
        }
        Err(e) => return Err(e.into()),
    };
    show_form(&state, jar, Some(refusal), StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ConfirmForm {
    /// The preview's key.
    cle: String,
    /// The administrator's password, when the login is older than 15 minutes.
    mot_de_passe: String,
}

/// `POST /gestion/import/confirmer`: applies the preview; 410 when it was
/// used or has expired, 409 when the accounts changed since.
pub async fn confirm(
    State(state): State<AppState>,
    Admin { admin, session, jar }: Admin,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, WebError> {
    if let Err(e) = state.console.confirm(&admin, &session, &form.mot_de_passe).await {
        return super::account::confirm_refused(&state, jar, e);
    }
    let (status, title, message) = match state.console.import_confirm(&admin, &form.cle).await {
        Ok(done) => return show_done(&state, jar, done),
        Err(ConsoleError::PreviewGone) => (
            StatusCode::GONE,
            "Aperçu expiré",
            "Cet aperçu a déjà été confirmé, ou date de plus de 15 minutes. Envoyez le fichier à nouveau pour \
             obtenir un nouvel aperçu.",
        ),
        Err(ConsoleError::PreviewStale) => (
            StatusCode::CONFLICT,
            "Comptes modifiés entre-temps",
            "Des comptes du fichier ont été modifiés depuis l'aperçu : rien n'a été importé. Envoyez le fichier à \
             nouveau et recommencez l'aperçu.",
        ),
        Err(e) => return Err(e.into()),
    };
    let ctx = context! { title, message, back_url => "/gestion/import" };
    page(&state, jar, "error.html", status, ctx)
}

fn show_form(
    state: &AppState,
    jar: CookieJar,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let ctx = context! { error, max_rows => IMPORT_MAX_ROWS, max_created => IMPORT_MAX_CREATED };
    page(state, jar, "gestion_import.html", status, ctx)
}

/// The rows of `plan` as the preview shows them: created, changed (with
/// each change), unchanged.
fn preview_context(plan: &Plan) -> Value {
    let (mut created, mut changed, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    for planned in &plan.rows {
        let row = &planned.row;
        let name = format!("{} {}", row.given_name, row.family_name);
        match &planned.action {
            Action::Create => created.push(context! {
                line => row.line, login => row.login.as_str(), name, profile => profile_label(row.profile),
                schools => row.schools.as_deref().unwrap_or_default().join(", "),
            }),
            Action::Update { changes, .. } => {
                let changes: Vec<Value> = changes
                    .iter()
                    .map(|c| context! { field => field_label(&c.field), before => &c.before, after => &c.after })
                    .collect();
                changed.push(context! { line => row.line, login => row.login.as_str(), name, changes });
            }
            Action::Unchanged { .. } => unchanged.push(row.login.as_str().to_owned()),
        }
    }
    context! { created, changed, unchanged, minutes => IMPORT_MINUTES }
}

/// The French name of a column the preview shows as changed.
fn field_label(field: &str) -> &str {
    match field {
        "profile" => "Profil",
        "given_name" => "Prénom",
        "family_name" => "Nom",
        "email" => "Adresse électronique",
        "school" => "Établissements",
        other => other,
    }
}

/// The end of an import: the counts, and the created accounts'
/// provisional passwords, shown once, with their letters to print.
fn show_done(state: &AppState, jar: CookieJar, done: ImportDone) -> Result<Response, WebError> {
    let letters: Vec<Value> = done
        .created
        .iter()
        .map(|l| context! { login => &l.login, name => &l.display_name, password => &l.provisional_password })
        .collect();
    let ctx = context! {
        letters, code => done.letters, updated => done.updated, unchanged => done.unchanged,
        minutes => LETTER_MINUTES,
    };
    page(state, jar, "gestion_import_fait.html", StatusCode::OK, ctx)
}
