//! `/gestion/nouveau-compte`: an administrator creates a provisioned
//! account of one of their schools; the next page shows its provisional
//! password once and its letter, as after a reset.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::{Deserialize, Serialize};

use idp_core::account::Profile;
use idp_core::admin::{AccountDraft, Administrator, ConsoleError, Scope};

use super::{Admin, profile_label};
use crate::compte::page;
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::state::AppState;

/// The fields of the form, as typed (given back on a refusal).
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CreateForm {
    identifiant: String,
    profil: String,
    prenom: String,
    nom: String,
    courriel: String,
    etablissement: String,
}

/// `GET /gestion/nouveau-compte`.
pub async fn form(State(state): State<AppState>, Admin { admin, jar, .. }: Admin) -> Result<Response, WebError> {
    show_form(&state, jar, &admin, &CreateForm::default(), None, StatusCode::OK)
}

/// `POST /gestion/nouveau-compte`: the account is created, or the form
/// comes back with what to correct.
pub async fn create(
    State(state): State<AppState>,
    Admin { admin, jar, .. }: Admin,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<Response, WebError> {
    let draft = AccountDraft {
        login: form.identifiant.clone(),
        profile: form.profil.clone(),
        given_name: form.prenom.clone(),
        family_name: form.nom.clone(),
        email: form.courriel.clone(),
        school: form.etablissement.clone(),
    };
    match state.console.create(&admin, &draft).await {
        Ok((_, code)) => super::account::show_letters(&state, jar, &admin, &code, true).await,
        Err(ConsoleError::Invalid(field)) => {
            show_form(&state, jar, &admin, &form, Some(refusal(field)), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(ConsoleError::LoginTaken) => {
            let error = "Cet identifiant est déjà utilisé : choisissez-en un autre.";
            show_form(&state, jar, &admin, &form, Some(error), StatusCode::CONFLICT)
        }
        Err(ConsoleError::Throttled) => {
            let error = "Trop de tentatives en peu de temps. Veuillez patienter une minute avant de réessayer.";
            show_form(&state, jar, &admin, &form, Some(error), StatusCode::TOO_MANY_REQUESTS)
        }
        Err(e) => Err(e.into()),
    }
}

/// What to correct in a field the console refused.
fn refusal(field: &str) -> &'static str {
    match field {
        "login" => "L'identifiant doit compter de 1 à 64 caractères : lettres sans accent, chiffres et . _ @ -.",
        "profile" => "Choisissez un profil.",
        "given name" => "Le prénom est obligatoire (128 caractères au plus).",
        "family name" => "Le nom est obligatoire (128 caractères au plus).",
        "email" => "L'adresse électronique n'est pas valide.",
        "school" => "Choisissez l'un de vos établissements.",
        _ => "Un champ n'est pas valide.",
    }
}

fn show_form(
    state: &AppState,
    jar: CookieJar,
    admin: &Administrator,
    form: &CreateForm,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let profiles: Vec<_> = Profile::ALL.iter().map(|p| (p.as_str(), profile_label(*p))).collect();
    let schools = match &admin.scope {
        Scope::Global => None,
        Scope::Schools(uais) => Some(uais.clone()),
    };
    let ctx = context! { form => minijinja::Value::from(minijinja::value::Serde(form)), profiles, schools, error };
    page(state, jar, "gestion_nouveau.html", status, ctx)
}
