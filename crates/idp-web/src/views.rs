//! Themes: minijinja templates and static files.
//!
//! A template is looked up in the configured theme folder on disk (if any),
//! then in the embedded copy of the theme, then in the embedded `default`
//! theme, so a theme may override any template and omit the others.
//! Templates end in `.html`, which turns auto-escaping on.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value, context};
use std::borrow::Cow;
use std::path::PathBuf;

use crate::config::PageTexts;
use crate::error::{ErrorCode, WebError};
use crate::state::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/themes.rs"));
}

const FALLBACK: &str = "default";

/// The template environment, built once at start.
pub struct Views {
    env: Environment<'static>,
    theme: String,
    theme_dir: Option<PathBuf>,
    static_url: String,
    site_name: String,
}

fn embedded(path: &str) -> Option<&'static [u8]> {
    embedded::FILES.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

/// Finds `theme/kind/name` on disk, in the embedded theme, or in the
/// embedded default theme.
fn find(theme_dir: Option<&PathBuf>, theme: &str, kind: &str, name: &str) -> Option<Cow<'static, [u8]>> {
    if name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return None;
    }
    if let Some(dir) = theme_dir
        && let Ok(bytes) = std::fs::read(dir.join(theme).join(kind).join(name))
    {
        return Some(Cow::Owned(bytes));
    }
    embedded(&format!("{theme}/{kind}/{name}"))
        .or_else(|| embedded(&format!("{FALLBACK}/{kind}/{name}")))
        .map(Cow::Borrowed)
}

impl Views {
    /// Fails when the theme does not exist (neither on disk nor embedded).
    pub fn new(theme: &str, theme_dir: Option<PathBuf>, site_name: &str) -> Result<Views, String> {
        let known = embedded::FILES.iter().any(|(p, _)| p.starts_with(&format!("{theme}/")))
            || theme_dir.as_ref().is_some_and(|d| d.join(theme).is_dir());
        if !known {
            return Err(format!("unknown theme '{theme}'"));
        }
        let mut env = Environment::new();
        let (loader_theme, loader_dir) = (theme.to_owned(), theme_dir.clone());
        env.set_loader(move |name| {
            Ok(find(loader_dir.as_ref(), &loader_theme, "templates", name)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        });
        // Every template must at least parse: fail at start, not on a
        // user's request.
        for name in [
            "login.html",
            "logged_in.html",
            "logged_out.html",
            "must_activate.html",
            "error.html",
            "post_redirect.html",
            "service_denied.html",
            "consent.html",
        ]
        .into_iter()
        .chain(crate::compte::TEMPLATES.iter().copied())
        .chain(crate::gestion::TEMPLATES.iter().copied())
        .chain(crate::cas::code::TEMPLATES.iter().copied())
        {
            env.get_template(name).map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(Views {
            env,
            theme: theme.to_owned(),
            theme_dir,
            static_url: format!("/static/{theme}"),
            site_name: site_name.to_owned(),
        })
    }

    /// Gives every template the words of [`PageTexts`].
    pub fn with_texts(mut self, texts: &PageTexts) -> Views {
        self.env.add_global("browser_versions", Value::from(texts.browser_versions.clone()));
        if let Some(charter) = &texts.charter {
            self.env.add_global("charter", Value::from_safe_string(charter.clone()));
        }
        self
    }

    /// Renders `name` with `ctx` plus the variables every page has.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, WebError> {
        let template = self.env.get_template(name).map_err(|e| WebError::internal(ErrorCode::Template, e))?;
        template
            .render(context! { static_url => &self.static_url, site_name => &self.site_name, ..ctx })
            .map_err(|e| WebError::internal(ErrorCode::Template, e))
    }

    pub fn theme(&self) -> &str {
        &self.theme
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `GET /static/{theme}/{path}`: a theme's static file.
pub async fn static_file(State(state): State<AppState>, Path((theme, path)): Path<(String, String)>) -> Response {
    if theme != state.views.theme {
        return WebError::NotFound.into_response();
    }
    match find(state.views.theme_dir.as_ref(), &theme, "static", &path) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, content_type(&path)), (header::CACHE_CONTROL, "public, max-age=3600")],
            bytes.into_owned(),
        )
            .into_response(),
        None => WebError::NotFound.into_response(),
    }
}
