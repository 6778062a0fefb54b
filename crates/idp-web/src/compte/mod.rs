//! Account pages under `/compte/`: the activation wizard, the forgotten
//! password, "Mon compte", and the e-mails they send. The flows themselves
//! are state machines of `idp_core` ([`idp_core::lifecycle::Lifecycle`]);
//! the handlers here parse the form, call one step, and render the page of
//! the state the flow is in (POST, then 303 to a GET, so reloading is safe).

pub mod activation;
pub mod deux_etapes;
pub mod mails;
pub mod meter;
pub mod mon_compte;
pub mod paris;
pub mod recovery;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use minijinja::{Value, context};

use idp_core::lifecycle::FlowError;
use idp_core::password_policy::{PasswordPolicy, Refusal, Strength};

use crate::csrf;
use crate::error::WebError;
use crate::state::AppState;

/// The templates of the account pages and e-mails (checked at start).
pub const TEMPLATES: &[&str] = &[
    "charte.html",
    "charte_texte.html",
    "charte_parties.html",
    "questions_fields.html",
    "password_fields.html",
    "activation_start.html",
    "activation_cgu.html",
    "activation_email.html",
    "activation_email_sent.html",
    "activation_questions.html",
    "activation_password.html",
    "activation_done.html",
    "email_confirm.html",
    "email_validated.html",
    "link_expired.html",
    "cgu_login.html",
    "forgot.html",
    "forgot_sent.html",
    "forgot_questions.html",
    "forgot_password.html",
    "password_changed.html",
    "compte.html",
    "mail/validation_subject.txt",
    "mail/validation.txt",
    "mail/validation.html",
    "mail/changement_subject.txt",
    "mail/changement.txt",
    "mail/changement.html",
    "mail/mot_de_passe_subject.txt",
    "mail/mot_de_passe.txt",
    "mail/mot_de_passe.html",
    "mail/adresse_remplacee_subject.txt",
    "mail/adresse_remplacee.txt",
    "mail/adresse_remplacee.html",
    "mail/deux_etapes_supprimee_subject.txt",
    "mail/deux_etapes_supprimee.txt",
    "mail/deux_etapes_supprimee.html",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/compte/activation", get(activation::show).post(activation::start))
        .route("/compte/activation/cgu", post(activation::cgu))
        .route("/compte/activation/courriel", get(activation::link).post(activation::email))
        .route("/compte/activation/courriel/confirmer", post(activation::confirm_link))
        .route("/compte/activation/courriel/validee", get(activation::link_spent))
        .route("/compte/activation/questions", get(activation::questions_page).post(activation::questions))
        .route("/compte/activation/retour", post(activation::back))
        .route("/compte/activation/mot-de-passe", post(activation::password))
        .route("/compte/mot-de-passe-oublie", get(recovery::show))
        .route("/compte/mot-de-passe-oublie/courriel", post(recovery::by_email))
        .route("/compte/mot-de-passe-oublie/questions", post(recovery::questions))
        .route("/compte/mot-de-passe-oublie/reponses", post(recovery::answers))
        .route("/compte/mot-de-passe-oublie/nouveau", get(recovery::link).post(recovery::new_password))
        .route("/compte/", get(mon_compte::show))
        .route("/compte", get(mon_compte::show))
        .route("/compte/mot-de-passe", post(mon_compte::password))
        .route("/compte/force-mot-de-passe", post(meter::check))
        .route("/compte/courriel", get(mon_compte::email_link).post(mon_compte::email))
        .route("/compte/courriel/confirmer", post(mon_compte::confirm_email))
        .route("/compte/questions", post(mon_compte::questions))
        .route("/compte/donnees.json", get(mon_compte::export))
        .route("/compte/deux-etapes", get(deux_etapes::show))
        .route("/compte/deux-etapes/activer", post(deux_etapes::activate))
        .route("/compte/deux-etapes/codes", post(deux_etapes::new_codes))
        .route("/compte/deux-etapes/supprimer", post(deux_etapes::remove))
        .route("/compte/deux-etapes/cle/options", post(deux_etapes::passkey_options))
        .route("/compte/deux-etapes/cle", post(deux_etapes::add_passkey))
        .route("/compte/deux-etapes/cle/supprimer", post(deux_etapes::remove_passkey))
        .route("/compte/deux-etapes/appareils/retirer", post(deux_etapes::forget_devices))
}

/// The strength of a password, in words.
pub fn strength_label(s: Strength) -> &'static str {
    match s {
        Strength::VeryWeak => "Très faible",
        Strength::Weak => "Faible",
        Strength::Medium => "Moyen",
        Strength::Strong => "Sûr",
        Strength::VeryStrong => "Très sûr",
    }
}

/// The French message of a refused step; `None` for errors that are not
/// the person's (storage), which become error pages.
pub fn message(e: &FlowError) -> Option<String> {
    let m = match e {
        FlowError::InvalidCredentials => "Identifiant ou mot de passe provisoire incorrect.".into(),
        FlowError::Throttled => {
            "Trop de tentatives ont échoué. Veuillez patienter quelques minutes avant de réessayer.".into()
        }
        FlowError::ProvisionalExpired => "Votre mot de passe provisoire a expiré. Veuillez contacter votre \
                                          établissement scolaire pour qu'il réinitialise votre compte."
            .into(),
        FlowError::Expired => "Cette demande a expiré ou a déjà été utilisée.".into(),
        FlowError::WrongStep => "Cette étape n'est plus la vôtre : voici l'étape en cours.".into(),
        FlowError::CguNotAccepted => "Pour continuer, cochez la case « J'ai lu et j'accepte les Conditions \
                                      Générales d'Utilisation décrites ci-dessus. »"
            .into(),
        FlowError::EmailInvalid => {
            "L'adresse électronique saisie n'est pas valide (exemple : prenom.nom@exemple.fr).".into()
        }
        FlowError::EmailMismatch => "Les deux adresses électroniques saisies sont différentes.".into(),
        FlowError::MailLimit => {
            "Trop de courriels ont été envoyés à cette adresse. Veuillez réessayer dans une heure.".into()
        }
        FlowError::UnknownQuestion => "Veuillez choisir vos deux questions secrètes dans la liste.".into(),
        FlowError::SameQuestion => "Veuillez choisir deux questions secrètes différentes.".into(),
        FlowError::BadAnswer => "Veuillez répondre aux deux questions secrètes (100 caractères au plus).".into(),
        FlowError::WrongAnswers => "Les réponses ne correspondent pas. Vérifiez-les et réessayez.".into(),
        FlowError::WrongPassword => "Le mot de passe actuel est incorrect.".into(),
        FlowError::Password(r) => refusal(*r),
        FlowError::Core(_) => return None,
    };
    Some(m)
}

/// Why a password is refused, in the words of the rule stated on the page.
pub fn refusal(r: Refusal) -> String {
    match r {
        Refusal::Mismatch => "Le mot de passe et sa confirmation sont différents.".into(),
        Refusal::TooShort { min } => {
            format!("Ce mot de passe est trop court : il doit contenir {min} caractères minimum.")
        }
        Refusal::TooLong { max } => format!("Ce mot de passe est trop long : {max} caractères au plus."),
        Refusal::TooFewClasses { min } => format!(
            "Ce mot de passe n'est pas assez varié : utilisez au moins {min} sortes de caractères parmi les lettres \
             minuscules, les lettres majuscules, les chiffres et les caractères spéciaux."
        ),
        Refusal::Personal => "Ce mot de passe contient votre identifiant, votre prénom, votre nom, le code de votre \
                              établissement ou le nom de l'ENT."
            .into(),
        Refusal::Common => "Ce mot de passe est un mot de passe courant, trop facile à deviner.".into(),
        Refusal::TooWeak { min } => format!(
            "Ce mot de passe est trop facile à deviner : il doit être jugé au moins « {} ». Allongez-le, par exemple \
             avec plusieurs mots.",
            strength_label(min)
        ),
    }
}

/// The rules of `policy`, as the page states them before typing: the
/// length (the sentence of the real ENT), then every other rule that can
/// refuse a password.
pub fn password_rules(policy: &PasswordPolicy) -> Value {
    let mut rules = Vec::new();
    if policy.min_classes > 0 {
        rules.push(format!(
            "Il doit contenir au moins {} sortes de caractères parmi les lettres minuscules, les lettres majuscules, \
             les chiffres et les caractères spéciaux.",
            policy.min_classes.min(4)
        ));
    }
    rules.push(
        "Il ne doit contenir ni votre identifiant, ni votre prénom, ni votre nom, ni le code de votre \
         établissement, ni le nom de l'ENT."
            .into(),
    );
    if policy.builtin_blocklist || !policy.blocklist.is_empty() {
        rules.push(
            "Il ne doit pas être un mot de passe courant (comme « azerty », « soleil » ou « motdepasse »), même \
             suivi de chiffres ou de caractères spéciaux."
                .into(),
        );
    }
    rules.push(format!(
        "Il doit être jugé au moins « {} » par l'indicateur de sécurité, qui estime combien d'essais il faudrait \
         pour le deviner : une phrase de plusieurs mots est un bon choix.",
        strength_label(policy.min_strength)
    ));
    rules.push(format!("Il ne doit pas dépasser {} caractères.", idp_core::password_policy::MAX_LENGTH));
    context! {
        length => format!("Ce mot de passe doit contenir {} caractères minimum.", policy.min_length),
        min_length => policy.min_length,
        max_length => idp_core::password_policy::MAX_LENGTH,
        others => rules,
    }
}

/// Turns a flow error into its message, or the error page.
pub fn user_error(e: FlowError) -> Result<String, WebError> {
    message(&e).ok_or_else(|| e.into())
}

/// Renders `template` with the CSRF token added.
pub fn page(
    state: &AppState,
    jar: CookieJar,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, WebError> {
    let (jar, csrf_token) = csrf::token(jar, &state.config)?;
    let password_rules = password_rules(&state.lifecycle.passwords);
    let html = state.views.render(template, context! { csrf_token, password_rules, ..ctx })?;
    Ok((status, jar, Html(html)).into_response())
}

/// The expired-link page, with what to do next.
pub fn expired(state: &AppState, jar: CookieJar) -> Result<Response, WebError> {
    page(
        state,
        jar,
        "link_expired.html",
        StatusCode::GONE,
        context! { hours => state.lifecycle.policy.email_link_hours },
    )
}
