//! XML encryption (XML-Enc) of SAML assertions: the content key travels
//! encrypted to the recipient's RSA key with RSA-OAEP, the element is
//! encrypted with AES-CBC or AES-GCM. RSA PKCS#1 v1.5 key transport
//! (padding-oracle prone) and 3DES are refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;

use crate::dsig::decode_b64;
use crate::ns;
use crate::xml::{Document, ElementId};
use crate::{Error, Result};

const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";

/// A content-encryption algorithm we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
}

impl Content {
    pub fn uri(self) -> &'static str {
        match self {
            Content::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            Content::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            Content::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            Content::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        }
    }

    fn from_uri(uri: &str) -> Result<Content> {
        [Content::Aes128Cbc, Content::Aes256Cbc, Content::Aes128Gcm, Content::Aes256Gcm]
            .into_iter()
            .find(|c| c.uri() == uri)
            .ok_or_else(|| Error::WeakAlgorithm(uri.to_owned()))
    }

    fn cipher(self) -> Cipher {
        match self {
            Content::Aes128Cbc => Cipher::aes_128_cbc(),
            Content::Aes256Cbc => Cipher::aes_256_cbc(),
            Content::Aes128Gcm => Cipher::aes_128_gcm(),
            Content::Aes256Gcm => Cipher::aes_256_gcm(),
        }
    }

    fn is_gcm(self) -> bool {
        matches!(self, Content::Aes128Gcm | Content::Aes256Gcm)
    }
}

/// Decrypts the `xenc:EncryptedData` under `wrapper` (an
/// `EncryptedAssertion`) with one of `keys` (the current SP key first,
/// then older ones during a rollover) and returns the plaintext XML.
pub fn decrypt(doc: &Document, wrapper: ElementId, keys: &[&PKey<Private>]) -> Result<String> {
    let data = doc.only_child(wrapper, ns::XENC, "EncryptedData").ok_or(Error::Decryption("no EncryptedData"))?;
    let method = doc.only_child(data, ns::XENC, "EncryptionMethod").ok_or(Error::Decryption("no method"))?;
    let content = Content::from_uri(doc.attr(method, "Algorithm").unwrap_or_default())?;
    let cipher_value = cipher_value(doc, data)?;
    // The key is inside the data's KeyInfo or beside the data in the wrapper.
    let encrypted_keys = doc.descendants_named(wrapper, ns::XENC, "EncryptedKey");
    if encrypted_keys.is_empty() {
        return Err(Error::Decryption("no EncryptedKey"));
    }
    for ek in encrypted_keys {
        for key in keys {
            if let Ok(cek) = unwrap_key(doc, ek, key)
                && cek.len() == content.cipher().key_len()
            {
                return decrypt_content(content, &cek, &cipher_value);
            }
        }
    }
    Err(Error::Decryption("no key of ours opens this assertion"))
}

fn cipher_value(doc: &Document, e: ElementId) -> Result<Vec<u8>> {
    let data = doc.only_child(e, ns::XENC, "CipherData").ok_or(Error::Decryption("no CipherData"))?;
    let value = doc.only_child(data, ns::XENC, "CipherValue").ok_or(Error::Decryption("no CipherValue"))?;
    decode_b64(&doc.text(value)?)
}

fn unwrap_key(doc: &Document, ek: ElementId, key: &PKey<Private>) -> Result<Vec<u8>> {
    let method = doc.only_child(ek, ns::XENC, "EncryptionMethod").ok_or(Error::Decryption("no key method"))?;
    let (oaep_md, mgf_md) = match doc.attr(method, "Algorithm").unwrap_or_default() {
        RSA_OAEP_MGF1P => (oaep_digest(doc, method)?, MessageDigest::sha1()),
        RSA_OAEP => {
            let mgf = doc.children_named(method, ns::XENC11, "MGF").find_map(|m| doc.attr(m, "Algorithm"));
            let mgf = match mgf {
                None | Some(MGF1_SHA1) => MessageDigest::sha1(),
                Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => MessageDigest::sha256(),
                Some(other) => return Err(Error::WeakAlgorithm(other.to_owned())),
            };
            (oaep_digest(doc, method)?, mgf)
        }
        other => return Err(Error::WeakAlgorithm(other.to_owned())),
    };
    let wrapped = cipher_value(doc, ek)?;
    let fail = |_| Error::Decryption("key transport");
    let mut d = Decrypter::new(key).map_err(fail)?;
    d.set_rsa_padding(Padding::PKCS1_OAEP).map_err(fail)?;
    d.set_rsa_oaep_md(oaep_md).map_err(fail)?;
    d.set_rsa_mgf1_md(mgf_md).map_err(fail)?;
    let mut out = vec![0; d.decrypt_len(&wrapped).map_err(fail)?];
    let n = d.decrypt(&wrapped, &mut out).map_err(fail)?;
    out.truncate(n);
    Ok(out)
}

/// The OAEP digest: SHA-1 unless a `ds:DigestMethod` says otherwise. SHA-1
/// inside OAEP is a mask function, not a signature, and is what most IdPs
/// (xmlsec's default) use.
fn oaep_digest(doc: &Document, method: ElementId) -> Result<MessageDigest> {
    match doc.children_named(method, ns::DS, "DigestMethod").find_map(|m| doc.attr(m, "Algorithm")) {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Ok(MessageDigest::sha1()),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Ok(MessageDigest::sha256()),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Ok(MessageDigest::sha512()),
        Some(other) => Err(Error::WeakAlgorithm(other.to_owned())),
    }
}

fn decrypt_content(content: Content, key: &[u8], data: &[u8]) -> Result<String> {
    let plain = match content.is_gcm() {
        true => {
            let (iv, rest) = data.split_at_checked(12).ok_or(Error::Decryption("short"))?;
            let (body, tag) = rest.split_at_checked(rest.len().saturating_sub(16)).ok_or(Error::Decryption("short"))?;
            openssl::symm::decrypt_aead(content.cipher(), key, Some(iv), &[], body, tag)
                .map_err(|_| Error::Decryption("content"))?
        }
        false => {
            let (iv, body) = data.split_at_checked(16).ok_or(Error::Decryption("short"))?;
            let fail = |_| Error::Decryption("content");
            let mut c = Crypter::new(content.cipher(), Mode::Decrypt, key, Some(iv)).map_err(fail)?;
            // XML-Enc padding (ISO 10126: only the last byte is defined).
            c.pad(false);
            let mut out = vec![0; body.len() + 16];
            let mut n = c.update(body, &mut out).map_err(fail)?;
            n += c.finalize(out.get_mut(n..).unwrap_or_default()).map_err(fail)?;
            out.truncate(n);
            let pad = usize::from(*out.last().ok_or(Error::Decryption("empty"))?);
            if pad == 0 || pad > 16 || pad > out.len() {
                return Err(Error::Decryption("padding"));
            }
            out.truncate(out.len() - pad);
            out
        }
    };
    String::from_utf8(plain).map_err(|_| Error::Decryption("not UTF-8"))
}

/// Encrypts `xml` (an element) to `cert`'s RSA key: RSA-OAEP (MGF1-SHA1,
/// the most widely understood) for the key, `content` for the element.
/// Returns an `xenc:EncryptedData` element to put inside an
/// `EncryptedAssertion`.
pub fn encrypt(xml: &str, cert: &X509, content: Content) -> Result<String> {
    let fail = |_| Error::Decryption("encryption");
    let cipher = content.cipher();
    let mut key = vec![0; cipher.key_len()];
    let mut iv = vec![0; if content.is_gcm() { 12 } else { 16 }];
    openssl::rand::rand_bytes(&mut key).map_err(fail)?;
    openssl::rand::rand_bytes(&mut iv).map_err(fail)?;
    let mut body = iv.clone();
    if content.is_gcm() {
        let mut tag = [0; 16];
        body.extend(openssl::symm::encrypt_aead(cipher, &key, Some(&iv), &[], xml.as_bytes(), &mut tag).map_err(fail)?);
        body.extend(tag);
    } else {
        body.extend(openssl::symm::encrypt(cipher, &key, Some(&iv), xml.as_bytes()).map_err(fail)?);
    }
    let public = cert.public_key().map_err(fail)?;
    let mut e = Encrypter::new(&public).map_err(fail)?;
    e.set_rsa_padding(Padding::PKCS1_OAEP).map_err(fail)?;
    let mut wrapped = vec![0; e.encrypt_len(&key).map_err(fail)?];
    let n = e.encrypt(&key, &mut wrapped).map_err(fail)?;
    wrapped.truncate(n);
    Ok(format!(
        concat!(
            r#"<xenc:EncryptedData xmlns:xenc="{xenc}" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{content}"/><ds:KeyInfo xmlns:ds="{ds}"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{oaep}"><ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>"#,
            r#"</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{body}</xenc:CipherValue>"#,
            r#"</xenc:CipherData></xenc:EncryptedData>"#
        ),
        xenc = ns::XENC,
        ds = ns::DS,
        content = content.uri(),
        oaep = RSA_OAEP_MGF1P,
        key = STANDARD.encode(wrapped),
        body = STANDARD.encode(body),
    ))
}
