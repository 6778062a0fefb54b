//! Embeds the themes (templates and static files) into the binary, so that
//! a deployed `idp` needs no files beside it. A theme folder given in config
//! still overrides them at run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let themes = manifest.join("../../themes");
    println!("cargo:rerun-if-changed={}", themes.display());
    let mut files = Vec::new();
    walk(&themes, &mut files);
    let mut code = String::from(
        "/// (theme-relative path, contents) of every embedded theme file.\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for file in files {
        let Ok(rel) = file.strip_prefix(&themes) else { continue };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.split('/').any(|part| part.starts_with('.')) {
            continue;
        }
        let abs = file.canonicalize().unwrap_or(file.clone());
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({:?})),", abs.to_string_lossy());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("themes.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
