//! First-login letters as one PDF, one A4 page per person: the login, the
//! provisional password, the activation address and the wizard's steps in
//! plain French.
//!
//! Made with `printpdf`; the DejaVu Sans font (`fonts/`, with its licence)
//! is embedded so that every accent prints and can be copied back out.

use printpdf::{IndirectFontRef, Mm, PdfDocument, PdfLayerReference};

use idp_core::admin::Letter;

const FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const WIDTH: Mm = Mm(210.0);
const HEIGHT: Mm = Mm(297.0);
const LEFT: Mm = Mm(20.0);
/// Characters per line of body text at 11 pt within the margins.
const LINE_CHARS: usize = 82;

/// What every letter of a document shares.
pub struct LetterContext<'a> {
    pub site_name: &'a str,
    /// `<public_url>/compte/activation`.
    pub activation_url: &'a str,
    /// Days the provisional password opens the wizard.
    pub validity_days: i64,
    /// Hours the e-mail validation link works.
    pub email_hours: i64,
}

/// The PDF of `letters`, one page each (an empty list gives no document).
pub fn render(letters: &[Letter], ctx: &LetterContext<'_>) -> Result<Vec<u8>, printpdf::Error> {
    let title = format!("Première connexion à l'ENT – {}", ctx.site_name);
    let (doc, page, layer) = PdfDocument::new(&title, WIDTH, HEIGHT, "lettre");
    let font = doc.add_external_font(FONT)?;
    for (i, letter) in letters.iter().enumerate() {
        let layer = if i == 0 {
            doc.get_page(page).get_layer(layer)
        } else {
            let (p, l) = doc.add_page(WIDTH, HEIGHT, "lettre");
            doc.get_page(p).get_layer(l)
        };
        write_page(&Writer { layer, font: font.clone(), y: 272.0 }, letter, ctx);
    }
    doc.save_to_bytes()
}

/// Writes lines down a page.
struct Writer {
    layer: PdfLayerReference,
    font: IndirectFontRef,
    y: f32,
}

impl Writer {
    fn line(&mut self, text: &str, size: f32) {
        self.layer.use_text(text, size, LEFT, Mm(self.y), &self.font);
        self.y -= size * 0.5;
    }

    fn paragraph(&mut self, text: &str) {
        for line in wrap(text, LINE_CHARS) {
            self.line(&line, 11.0);
        }
        self.y -= 3.0;
    }
}

fn write_page(start: &Writer, letter: &Letter, ctx: &LetterContext<'_>) {
    let mut w = Writer { layer: start.layer.clone(), font: start.font.clone(), y: start.y };
    w.line(&format!("Votre compte ENT – {}", ctx.site_name), 18.0);
    w.y -= 6.0;
    w.paragraph(&format!("Bonjour {},", letter.display_name));
    w.paragraph(
        "Votre établissement scolaire vous remet les informations de compte qui vous permettent d'activer votre \
         compte ENT.",
    );
    w.line(&format!("Identifiant : {}", letter.login), 14.0);
    w.y -= 2.0;
    w.line(&format!("Mot de passe provisoire : {}", letter.provisional_password), 14.0);
    w.y -= 8.0;
    w.line("Pour activer votre compte :", 13.0);
    w.y -= 2.0;
    w.paragraph("1. Ouvrez l'adresse suivante dans votre navigateur :");
    w.line(ctx.activation_url, 12.0);
    w.y -= 3.0;
    for step in steps(ctx) {
        w.paragraph(&step);
    }
    w.y -= 4.0;
    w.paragraph(&format!(
        "Ce mot de passe provisoire ne sert qu'à activer votre compte, une seule fois, dans les {} jours. Il ne \
         permet pas de se connecter à l'ENT. Gardez cette lettre en lieu sûr et ne la confiez à personne.",
        ctx.validity_days
    ));
    w.paragraph(
        "En cas de difficulté, ou si votre mot de passe provisoire a expiré, contactez votre établissement \
         scolaire : il peut réinitialiser votre compte.",
    );
}

/// The wizard's steps after the first, in its own words.
fn steps(ctx: &LetterContext<'_>) -> Vec<String> {
    vec![
        "2. Saisissez les informations de compte fournies par votre établissement (identifiant et mot de passe \
         provisoire), puis cliquez sur « Continuer »."
            .into(),
        "3. Lisez les Conditions Générales d'Utilisation, cochez la case « J'ai lu et j'accepte les Conditions \
         Générales d'Utilisation » et cliquez sur « Continuer »."
            .into(),
        format!(
            "4. Saisissez votre adresse électronique personnelle (ou de secours) et validez-la en cliquant sur le \
             lien du courriel reçu, dans les {} heures. Sinon, choisissez deux questions secrètes et leurs réponses.",
            ctx.email_hours
        ),
        "5. Choisissez votre mot de passe, saisissez-le une seconde fois dans « Confirmation mot de passe », puis \
         cliquez sur « Continuer ». Votre compte est activé : connectez-vous avec votre identifiant et ce mot de \
         passe."
            .into(),
    ]
}

/// Greedy word wrap at `width` characters. Written here: the letters are
/// the only wrapped text of the server and a line of a fixed font size
/// needs no more than this.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_keeps_every_word_within_the_width() {
        let text = "Saisissez les informations de compte fournies par votre établissement scolaire.";
        let lines = wrap(text, 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }
}
