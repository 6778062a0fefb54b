//! Encryption at rest of the secrets the database keeps (the OIDC signing
//! keys): AES-256-GCM with a key-encryption key that lives outside the
//! database, in a file, so that a dump or a copy of the database alone does
//! not give the keys away.
//!
//! A stored value is `v1:` then the base64url of a random 96-bit nonce and
//! the ciphertext with its tag. The associated data names the row (its
//! `kid`), so that a value moved to another row does not decrypt.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::io::Write;
use std::path::Path;

use idp_core::secret::Secret;

use crate::storage;

/// The prefix of an encrypted value; anything else is a value stored in
/// clear by an earlier version.
const PREFIX: &str = "v1:";

/// Length of the key-encryption key, in bytes.
const KEY_LEN: usize = 32;

/// The key-encryption key, ready to seal and open values.
pub struct KeyCipher {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher(***)")
    }
}

impl KeyCipher {
    /// A cipher from 32 key bytes.
    pub fn new(bytes: &[u8]) -> idp_core::Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(storage(format!("a key-encryption key has {KEY_LEN} bytes, not {}", bytes.len())));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| storage("invalid key-encryption key"))?;
        Ok(Self { key: LessSafeKey::new(key) })
    }

    /// The key of `path`: 32 bytes in standard base64 on one line (as
    /// `openssl rand -base64 32` writes them).
    pub fn from_file(path: &Path) -> idp_core::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| storage(format!("{}: {e}", path.display())))?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| storage(format!("{}: base64 of {KEY_LEN} bytes expected", path.display())))?;
        Self::new(&bytes).map_err(|e| storage(format!("{}: {e}", path.display())))
    }

    /// The key of `path`, made first (mode 0600) when the file does not
    /// exist. Processes starting at once all read the first one written:
    /// the file appears whole or not at all.
    pub fn load_or_create(path: &Path) -> idp_core::Result<Self> {
        if !path.exists() {
            create_key_file(path)?;
        }
        Self::from_file(path)
    }

    /// `plain` encrypted for the row named `row`.
    pub fn seal(&self, row: &str, plain: &Secret) -> idp_core::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| storage(format!("OS random generator: {e}")))?;
        let mut data = plain.expose().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(row.as_bytes()), &mut data)
            .map_err(|_| storage("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The clear value of `stored` (of the row `row`), and whether it was
    /// stored in clear. A value sealed under another key, or changed, is an
    /// error that says so.
    pub fn open(&self, row: &str, stored: &str) -> idp_core::Result<(Secret, bool)> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok((Secret::new(stored), true));
        };
        let undecodable = || storage(format!("the stored key '{row}' is not a sealed value"));
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| undecodable())?;
        let (nonce, data) = bytes.split_at_checked(NONCE_LEN).ok_or_else(undecodable)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecodable())?;
        let mut data = data.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(row.as_bytes()), &mut data).map_err(|_| {
            storage(format!(
                "the stored key '{row}' does not decrypt with this key-encryption key: every node needs the \
                 same key_encryption_key_file"
            ))
        })?;
        let plain = String::from_utf8(plain.to_vec()).map_err(|_| undecodable())?;
        Ok((Secret::new(plain), false))
    }
}

/// Writes a new random key to `path` (mode 0600), through a temporary file
/// linked into place, so that no process ever reads a half-written key and
/// an existing key is never replaced.
fn create_key_file(path: &Path) -> idp_core::Result<()> {
    let at = |e: std::io::Error| storage(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(at)?;
    }
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(|e| storage(format!("OS random generator: {e}")))?;
    let suffix = idp_core::secret::random_token(12)?;
    let temporary = path.with_extension(format!("tmp-{suffix}"));
    let written = private_file(&temporary).and_then(|mut f| {
        f.write_all(format!("{}\n", STANDARD.encode(bytes)).as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(()),
        // Another process made it first: its key is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(at(e)),
    }
}

/// A new file that only its owner may read and write.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let cipher = KeyCipher::new(&[7u8; 32]).unwrap();
        let pem = Secret::new("-----BEGIN PRIVATE KEY-----\nMIIE…\n-----END PRIVATE KEY-----\n");
        let sealed = cipher.seal("kid-1", &pem).unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("PRIVATE"), "{sealed}");
        assert_ne!(sealed, cipher.seal("kid-1", &pem).unwrap(), "a fresh nonce each time");
        let (opened, was_clear) = cipher.open("kid-1", &sealed).unwrap();
        assert_eq!(opened, pem);
        assert!(!was_clear);
        assert!(cipher.open("kid-2", &sealed).is_err(), "bound to its row");
        let other = KeyCipher::new(&[8u8; 32]).unwrap();
        let err = other.open("kid-1", &sealed).unwrap_err().to_string();
        assert!(err.contains("key_encryption_key_file"), "{err}");
        // A value of an earlier version, in clear, still opens, and says so.
        let (clear, was_clear) = cipher.open("kid-1", pem.expose()).unwrap();
        assert_eq!(clear, pem);
        assert!(was_clear);
        assert!(KeyCipher::new(&[1u8; 16]).is_err());
    }

    #[test]
    fn a_key_file_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key-encryption.key");
        let first = KeyCipher::load_or_create(&path).unwrap();
        let sealed = first.seal("k", &Secret::new("x")).unwrap();
        let again = KeyCipher::load_or_create(&path).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap().0, Secret::new("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        std::fs::write(dir.path().join("bad.key"), "not base64!").unwrap();
        assert!(KeyCipher::from_file(&dir.path().join("bad.key")).is_err());
    }
}
