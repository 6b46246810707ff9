//! Secrets at rest: registry passwords and other credentials are sealed with ChaCha20-Poly1305
//! under a key from configuration (`--secret-key-file`; `kiln up` makes one, mode 0600, on the
//! first start). Each sealed value is bound to the record and field it belongs to, so a value
//! copied to another record does not open. The API never returns a secret.

use crate::ControlError;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

const PREFIX: &str = "v1:";

/// Seals and opens secrets with the installation's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box over a 32-byte key.
    pub fn new(key: &[u8]) -> Result<SecretBox, ControlError> {
        if key.len() != 32 {
            return Err(ControlError::Invalid(format!(
                "the secret key must be 32 bytes, not {}",
                key.len()
            )));
        }
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        })
    }

    /// Reads the key file (base64 of 32 bytes), creating it with a random key (mode 0600) when
    /// it does not exist.
    pub fn load_or_create(path: &Path) -> Result<SecretBox, ControlError> {
        let engine = base64::engine::general_purpose::STANDARD;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = engine.decode(text.trim()).map_err(|e| {
                    ControlError::Invalid(format!("secret key file {}: {e}", path.display()))
                })?;
                SecretBox::new(&key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                crate::db::fill_random(&mut key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = match options.open(path) {
                    Ok(file) => file,
                    // Another process starting at the same moment made it: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        for _ in 0..100 {
                            let text = std::fs::read_to_string(path).unwrap_or_default();
                            if !text.trim().is_empty() {
                                let key = engine.decode(text.trim()).map_err(|e| {
                                    ControlError::Invalid(format!(
                                        "secret key file {}: {e}",
                                        path.display()
                                    ))
                                })?;
                                return SecretBox::new(&key);
                            }
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        return Err(ControlError::Unavailable(format!(
                            "secret key file {} stays empty",
                            path.display()
                        )));
                    }
                    Err(e) => {
                        return Err(ControlError::Unavailable(format!(
                            "cannot create {}: {e}",
                            path.display()
                        )));
                    }
                };
                std::io::Write::write_all(&mut file, engine.encode(key).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| {
                        ControlError::Unavailable(format!("cannot write {}: {e}", path.display()))
                    })?;
                SecretBox::new(&key)
            }
            Err(e) => Err(ControlError::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Seals `plaintext` for the record and field named by `context`.
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, ControlError> {
        let mut nonce = [0u8; 12];
        crate::db::fill_random(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| ControlError::Internal("sealing a secret failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, ControlError> {
        let broken = || ControlError::Internal(format!("secret for {context} does not open"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix(PREFIX).ok_or_else(broken)?)
            .map_err(|_| broken())?;
        if bytes.len() < 12 {
            return Err(broken());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| broken())?;
        String::from_utf8(plain).map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let a = SecretBox::new(&[7u8; 32]).unwrap();
        let b = SecretBox::new(&[8u8; 32]).unwrap();
        let sealed = a
            .seal("hunter2", "environment:1:registry_password")
            .unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            a.open(&sealed, "environment:1:registry_password").unwrap(),
            "hunter2"
        );
        assert!(a.open(&sealed, "environment:2:registry_password").is_err());
        assert!(b.open(&sealed, "environment:1:registry_password").is_err());
        assert_ne!(
            sealed,
            a.seal("hunter2", "environment:1:registry_password")
                .unwrap()
        );
        assert!(SecretBox::new(&[0u8; 16]).is_err());
    }
}
