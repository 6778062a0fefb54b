//! Accessibility (RGAA 4 / WCAG 2.1 AA, the automatable part): every page a
//! user can meet on the way to a login, opened in headless Debian Chromium
//! at a phone (360x640) and a desktop (1280x800) viewport and checked with
//! axe-core, plus `lang="fr"`, a title, one `<h1>`, labelled fields and the
//! keyboard order of the login form. The checker is tests/a11y/check.mjs;
//! its npm packages install on first use (`npm ci`, under a lock).
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`): without it the
//! test says it skipped, unless `IDP_TEST_REQUIRE_BROWSER=1` (CI) makes it
//! fail.

use std::path::{Path, PathBuf};

use idp_core::account::Profile;
use serde_json::json;

use crate::helpers::{TestApp, repo_root, spawn_app, spawn_app_with};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread")]
async fn pages_meet_wcag_21_aa_on_phone_and_desktop() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("IDP_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!(
                "IDP_TEST_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: install Debian's chromium \
                 (apt-get install -y chromium; .ci/run does it)"
            );
        }
        println!("skipped: chromium not installed (apt-get install chromium)");
        return;
    }
    let dir = tokio::task::spawn_blocking(npm_ready).await.unwrap();

    // The theme in use by default (touraine-eschool), then the plain one.
    let themed = spawn_app().await;
    check_pages(&themed, &dir, "touraine-eschool").await;
    let plain = spawn_app_with(|s| s.theme = "default".into()).await;
    check_pages(&plain, &dir, "default").await;
}

async fn check_pages(app: &TestApp, dir: &Path, theme: &str) {
    app.active_account("a11y.eleve", "Bonjour-2026!", Profile::Eleve).await;
    app.provisioned_account("a11y.nouveau", "Provisoire-2026").await;
    app.service("app", r"https://app\.example\.test/.*", &["uid"], None).await;

    let form = "/cas/login?profile=eleve-parent";
    let mut pages = vec![
        json!({ "name": "choix du profil", "path": "/cas/login", "status": 200 }),
        json!({ "name": "formulaire de connexion", "path": form, "status": 200, "keyboard": true }),
        json!({
            "name": "formulaire avec service",
            "path": "/cas/login?profile=eleve-parent&service=https%3A%2F%2Fapp.example.test%2F",
            "status": 200,
        }),
        json!({
            "name": "échec de connexion (role=alert)",
            "path": form,
            "login": { "username": "a11y.eleve", "password": "pas-le-bon" },
            "expect": "[role=alert]#erreur-connexion",
        }),
        json!({
            "name": "compte à activer",
            "path": form,
            "login": { "username": "a11y.nouveau", "password": "Provisoire-2026" },
            "expect": "a[href^='/compte/activation']",
        }),
        json!({
            "name": "connecté (sans service)",
            "path": form,
            "login": { "username": "a11y.eleve", "password": "Bonjour-2026!" },
        }),
        json!({ "name": "déconnexion", "path": "/cas/logout", "status": 200 }),
        json!({ "name": "page introuvable (404)", "path": "/page-inexistante", "status": 404 }),
        json!({
            "name": "service inconnu (erreur)",
            "path": "/cas/login?service=https%3A%2F%2Funknown.example%2F",
            "expect": "[role=alert]",
        }),
    ];
    // The account pages come from another piece of work: checked once they
    // exist, so this test passes before and after they land.
    let mut absent = vec![];
    for path in ["/compte/activation", "/compte/mot-de-passe-oublie"] {
        let status = reqwest::get(app.url(path)).await.unwrap().status().as_u16();
        if status == 200 {
            pages.push(json!({ "name": path, "path": path, "status": 200 }));
        } else {
            absent.push(format!("{path} ({status})"));
        }
    }
    if !absent.is_empty() {
        println!("[{theme}] not checked, not there yet: {}", absent.join(", "));
    }

    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), serde_json::to_vec_pretty(&pages).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let mut node = tokio::process::Command::new("node");
    // A11Y_SCREENSHOTS=DIR keeps a picture of every page, one folder a theme.
    if let Some(shots) = std::env::var_os("A11Y_SCREENSHOTS") {
        let shots = PathBuf::from(shots).join(theme);
        std::fs::create_dir_all(&shots).unwrap();
        node.env("A11Y_SCREENSHOTS", shots);
    }
    let output = node
        .arg(dir.join("check.mjs"))
        .arg(&app.address)
        .arg("--pages")
        .arg(list.path())
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (Node 20 is needed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("[{theme}] check.mjs ({:.1}s):\n{stdout}{stderr}", started.elapsed().as_secs_f64());
    assert!(output.status.success(), "accessibility violations with theme {theme}:\n{stdout}\n{stderr}");
}

/// tests/a11y with its node_modules installed from package-lock.json
/// (`npm ci`), once: a copy of the lock file in node_modules says it is up
/// to date; a lock directory keeps parallel test processes from installing
/// at the same time.
pub(crate) fn npm_ready() -> PathBuf {
    let root = repo_root();
    let dir = root.join("tests/a11y");
    let lockfile = std::fs::read(dir.join("package-lock.json")).expect("tests/a11y/package-lock.json");
    let stamp = dir.join("node_modules/.idp-package-lock.json");
    let up_to_date = || std::fs::read(&stamp).is_ok_and(|s| s == lockfile);
    if up_to_date() {
        return dir;
    }
    std::fs::create_dir_all(root.join("target")).unwrap();
    let lock = root.join("target/.a11y-npm.lock");
    let started = std::time::Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        // A lock left by a killed run: older than any install takes.
        let stale = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 600));
        if stale {
            let _ = std::fs::remove_dir(&lock);
            continue;
        }
        assert!(started.elapsed().as_secs() < 600, "waited too long for {}", lock.display());
        std::thread::sleep(std::time::Duration::from_millis(200));
        if up_to_date() {
            return dir;
        }
    }
    let result = std::panic::catch_unwind(|| {
        if !up_to_date() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm runs (Node 20 + npm are needed)");
            assert!(status.success(), "npm ci in tests/a11y failed");
            std::fs::write(&stamp, &lockfile).unwrap();
        }
    });
    let _ = std::fs::remove_dir(&lock);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    dir
}
