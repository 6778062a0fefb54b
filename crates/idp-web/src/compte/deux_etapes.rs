//! `/compte/deux-etapes`: the « Validation en deux étapes » section of Mon
//! compte. TOTP enrolment (QR code and secret as text, confirmed by one
//! code), passkeys (« Ajouter une clé d'accès »: the static script asks
//! `/compte/deux-etapes/cle/options` for a challenge and posts the
//! browser's answer in the form; listed with their last use; one removed
//! after the current password), ten recovery codes shown once with the
//! first second factor, new recovery codes and removal (both after the
//! current password), and the trusted devices (« Appareils de confiance »:
//! one or all removed). The rules are those of
//! [`idp_core::second_factor::SecondFactor`], [`idp_core::passkeys`] and
//! [`idp_core::trusted_devices`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use idp_core::account::Account;
use idp_core::second_factor::{AMR_OTP, AMR_PASSKEY, Confirmation, Remover, TotpOffer};
use idp_protocol::passkeys::Registration;

use crate::cas::code::{offer_context, passkey_refusal};
use crate::cas::login::redirect;
use crate::cas::passkey::options_json;
use crate::compte::mon_compte::SignedIn;
use crate::compte::paris::long_date;
use crate::compte::{page, user_error};
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::params::Params;
use crate::security::no_store;
use crate::state::AppState;

const SECTION: &str = "/compte/deux-etapes";

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TwoStepForm {
    /// What was just done (after a redirect): `supprimee`.
    fait: String,
    /// The pending enrolment.
    enrolement: String,
    code: String,
    mot_de_passe_actuel: String,
    /// A passkey's registration: the token of its challenge, the browser's
    /// answer (JSON) and « Nom de la clé ».
    defi: String,
    reponse: String,
    nom: String,
    /// The passkey to remove (its id).
    cle: String,
    /// The trusted device to remove (its id), or `tous`.
    appareil: String,
}

/// `GET /compte/deux-etapes`.
pub async fn show(
    State(state): State<AppState>,
    SignedIn { account, jar, .. }: SignedIn,
    Params(q): Params<TwoStepForm>,
) -> Result<Response, WebError> {
    render(&state, jar, &account, Shown { done: &q.fait, ..Shown::default() }).await
}

/// What the section shows beside the person's enrolment.
#[derive(Default)]
struct Shown<'a> {
    done: &'a str,
    /// The form in error and its message.
    error: Option<(&'static str, String)>,
    /// The pending enrolment to show again (after a wrong code).
    offer: Option<TotpOffer>,
}

async fn render(state: &AppState, jar: CookieJar, account: &Account, shown: Shown<'_>) -> Result<Response, WebError> {
    let mfa = &state.second_factor;
    let enrolled = mfa.enrolled(account.id).await?;
    let offer = match shown.offer {
        Some(offer) => Some(offer),
        None if !enrolled.totp => Some(mfa.begin_totp(account).await?),
        None => None,
    };
    let enrol = offer.as_ref().map(offer_context).transpose()?;
    let (error_in, error) = shown.error.unzip();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let passkeys: Vec<_> = mfa
        .passkeys(account)
        .await?
        .into_iter()
        .map(|p| context! { id => p.id, name => p.name, added => long_date(p.created_at), last_used => p.last_used_at.map(long_date) })
        .collect();
    let devices: Vec<_> = mfa
        .trusted_devices(account)
        .await?
        .into_iter()
        .map(|d| context! { id => d.id, label => d.label, added => long_date(d.created_at), last_used => d.last_used_at.map(long_date), expires => long_date(d.expires_at) })
        .collect();
    let ctx = context! {
        enrolled => Serde(&enrolled), enrol, error_in, error, done => shown.done, passkeys, devices,
        passkeys_offered => state.passkeys.enabled(),
        required => mfa.required(account).await?, action => "/compte/deux-etapes/activer", jeton => "",
    };
    let mut response = page(state, jar, "deux_etapes.html", status, ctx)?;
    no_store(response.headers_mut());
    Ok(response)
}

/// `POST /compte/deux-etapes/activer`: the first code of the enrolment.
/// Right, the recovery codes are shown once and the session counts the
/// code as its second factor.
pub async fn activate(
    State(state): State<AppState>,
    SignedIn { session, account, jar, source }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    let mfa = &state.second_factor;
    let message = match mfa.confirm_totp(&account, &form.enrolement, &form.code, &source).await? {
        Confirmation::Enrolled(codes) => {
            state.cas.record_factor(&session, AMR_OTP).await?;
            return recovery_codes_page(&state, jar, codes);
        }
        Confirmation::WrongCode => {
            "Ce code de vérification est incorrect. Vérifiez l'heure de votre téléphone et saisissez le code affiché."
        }
        Confirmation::Throttled => {
            "Trop de codes incorrects ont été saisis. Veuillez patienter quelques minutes avant de réessayer."
        }
        Confirmation::Expired => "Cette demande a expiré : scannez ce nouveau code QR.",
    };
    let offer = mfa.pending_offer(&account, &form.enrolement).await?;
    let shown = Shown { error: Some(("totp", message.to_owned())), offer, ..Shown::default() };
    render(&state, jar, &account, shown).await
}

/// `POST /compte/deux-etapes/codes`: ten new recovery codes (after the
/// current password); the old ones stop working.
pub async fn new_codes(
    State(state): State<AppState>,
    SignedIn { account, jar, source, .. }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    if let Err(e) = state.lifecycle.check_current_password(&account, &form.mot_de_passe_actuel, &source).await {
        let shown = Shown { error: Some(("codes", user_error(e)?)), ..Shown::default() };
        return render(&state, jar, &account, shown).await;
    }
    match state.second_factor.new_recovery_codes(&account).await? {
        Some(codes) => recovery_codes_page(&state, jar, codes),
        None => Ok((jar, redirect(StatusCode::SEE_OTHER, SECTION)).into_response()),
    }
}

/// `POST /compte/deux-etapes/supprimer`: removes every second factor
/// (after the current password).
pub async fn remove(
    State(state): State<AppState>,
    SignedIn { account, jar, source, .. }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    if let Err(e) = state.lifecycle.check_current_password(&account, &form.mot_de_passe_actuel, &source).await {
        let shown = Shown { error: Some(("supprimer", user_error(e)?)), ..Shown::default() };
        return render(&state, jar, &account, shown).await;
    }
    state.second_factor.remove(&account, Remover::Owner).await?;
    Ok((jar, redirect(StatusCode::SEE_OTHER, &format!("{SECTION}?fait=supprimee"))).into_response())
}

/// `POST /compte/deux-etapes/cle/options`: the challenge to register a
/// passkey (JSON).
pub async fn passkey_options(
    State(state): State<AppState>,
    SignedIn { account, .. }: SignedIn,
    CsrfForm(_): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    let challenge = state.passkeys.start_registration(&account).await?;
    Ok(options_json(challenge, "Les clés d'accès ne sont pas proposées à cette adresse du site."))
}

/// `POST /compte/deux-etapes/cle`: the browser's answer to the challenge.
/// Stored, the session counts the passkey as its second factor; the first
/// second factor shows the recovery codes once.
pub async fn add_passkey(
    State(state): State<AppState>,
    SignedIn { session, account, jar, .. }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    match state.passkeys.finish_registration(&account, &form.defi, &form.nom, &form.reponse).await? {
        Registration::Added { recovery_codes } => {
            state.cas.record_factor(&session, AMR_PASSKEY).await?;
            match recovery_codes {
                Some(codes) => recovery_codes_page(&state, jar, codes),
                None => {
                    Ok((jar, redirect(StatusCode::SEE_OTHER, &format!("{SECTION}?fait=cle-ajoutee"))).into_response())
                }
            }
        }
        Registration::Refused(refused) => {
            let shown = Shown { error: Some(("cle", passkey_refusal(refused).1.to_owned())), ..Shown::default() };
            render(&state, jar, &account, shown).await
        }
    }
}

/// `POST /compte/deux-etapes/cle/supprimer`: removes one passkey (after
/// the current password, as the removal of everything).
pub async fn remove_passkey(
    State(state): State<AppState>,
    SignedIn { account, jar, source, .. }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    if let Err(e) = state.lifecycle.check_current_password(&account, &form.mot_de_passe_actuel, &source).await {
        let shown = Shown { error: Some(("cle-supprimer", user_error(e)?)), ..Shown::default() };
        return render(&state, jar, &account, shown).await;
    }
    let id = form.cle.trim().parse::<i64>().ok();
    let removed = match id {
        Some(id) => state.second_factor.remove_passkey(&account, id).await?,
        None => false,
    };
    if !removed {
        let message = "Cette clé d'accès n'existe pas ou a déjà été supprimée.".to_owned();
        let shown = Shown { error: Some(("cle-supprimer", message)), ..Shown::default() };
        return render(&state, jar, &account, shown).await;
    }
    Ok((jar, redirect(StatusCode::SEE_OTHER, &format!("{SECTION}?fait=cle-supprimee"))).into_response())
}

/// `POST /compte/deux-etapes/appareils/retirer`: removes one trusted
/// device (`appareil` = its id) or every one (`tous`). No password is
/// asked: removing trust only makes the code asked again.
pub async fn forget_devices(
    State(state): State<AppState>,
    SignedIn { account, jar, .. }: SignedIn,
    CsrfForm(form): CsrfForm<TwoStepForm>,
) -> Result<Response, WebError> {
    let mfa = &state.second_factor;
    let done = match form.appareil.trim() {
        "tous" => {
            mfa.forget_devices(&account, None).await?;
            "appareils-retires"
        }
        id => {
            let removed = match id.parse::<i64>() {
                Ok(id) => mfa.forget_devices(&account, Some(id)).await?,
                Err(_) => 0,
            };
            if removed == 0 {
                let message = "Cet appareil n'est plus dans la liste : il a déjà été retiré ou sa confiance a expiré.";
                let shown = Shown { error: Some(("appareil", message.to_owned())), ..Shown::default() };
                return render(&state, jar, &account, shown).await;
            }
            "appareil-retire"
        }
    };
    Ok((jar, redirect(StatusCode::SEE_OTHER, &format!("{SECTION}?fait={done}"))).into_response())
}

/// The recovery codes, shown once and never cached.
fn recovery_codes_page(state: &AppState, jar: CookieJar, codes: Vec<String>) -> Result<Response, WebError> {
    let ctx = context! { codes, at_login => false };
    let mut response = page(state, jar, "recovery_codes.html", StatusCode::OK, ctx)?;
    no_store(response.headers_mut());
    Ok(response)
}
