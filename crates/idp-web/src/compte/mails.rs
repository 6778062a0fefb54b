//! The e-mails of the account flows, written with the theme's templates
//! (`mail/<name>_subject.txt`, `mail/<name>.txt`, `mail/<name>.html`), so a
//! theme owns their words like it owns its pages.

use minijinja::context;
use std::sync::Arc;
use url::Url;

use idp_core::lifecycle::MailKind;
use idp_core::ports::{MailComposer, OutgoingMail};

use crate::compte::paris;
use crate::views::Views;

/// The [`MailComposer`] of the web layer.
pub struct MailTemplates {
    pub views: Arc<Views>,
    /// Links in e-mails point to the server's public URL.
    pub public_url: Url,
}

impl MailTemplates {
    fn link(&self, path: &str, code: &str) -> String {
        // The public URL may carry a path prefix (behind a proxy): keep it.
        let mut url = self.public_url.clone();
        let prefixed = format!("{}{path}", self.public_url.path().trim_end_matches('/'));
        url.set_path(&prefixed);
        url.query_pairs_mut().clear().append_pair("code", code);
        url.to_string()
    }
}

impl MailTemplates {
    fn page(&self, path: &str) -> String {
        let mut url = self.public_url.clone();
        url.set_path(&format!("{}{path}", self.public_url.path().trim_end_matches('/')));
        url.to_string()
    }
}

impl MailComposer for MailTemplates {
    fn compose(&self, mail: &MailKind, to: &str, display_name: &str) -> idp_core::Result<OutgoingMail> {
        let mut hours = None;
        let (name, link, expires_at, new_address) = match mail {
            MailKind::ActivationValidation { code, expires_at, hours: h } => {
                hours = Some(*h);
                ("validation", self.link("/compte/activation/courriel", code), Some(expires_at), None)
            }
            MailKind::EmailChange { code, expires_at } => {
                ("changement", self.link("/compte/courriel", code), Some(expires_at), None)
            }
            MailKind::PasswordReset { code, expires_at } => {
                ("mot_de_passe", self.link("/compte/mot-de-passe-oublie/nouveau", code), Some(expires_at), None)
            }
            MailKind::AddressReplaced { new_address } => {
                ("adresse_remplacee", self.page("/compte/"), None, Some(new_address))
            }
            MailKind::SecondFactorRemoved => ("deux_etapes_supprimee", self.page("/compte/deux-etapes"), None, None),
        };
        let ctx = context! {
            link, display_name, to, new_address, hours,
            // Paris time in words: « jeudi 3 décembre 2026 à 14 h 05 ».
            expires_at => expires_at.map(|t| paris::long_date(*t)),
        };
        let render =
            |file: String| self.views.render(&file, ctx.clone()).map_err(|e| idp_core::Error::Template(e.into()));
        Ok(OutgoingMail {
            to: to.to_owned(),
            subject: render(format!("mail/{name}_subject.txt"))?.trim().to_owned(),
            text: render(format!("mail/{name}.txt"))?,
            html: Some(render(format!("mail/{name}.html"))?),
        })
    }
}
