//! The deployment's own secrets on disk: the first admin token (so that
//! a fresh data directory is usable without set-up) and the key that
//! turns participant ids into evaluators' pseudonyms. Both are files only
//! their owner can read.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::tokens::TokenStore;
use super::{AccessError, Role};

pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const PSEUDONYM_KEY_FILE: &str = "pseudonym.key";

/// The name the first admin is created under.
pub const FIRST_ADMIN: &str = "admin";

fn io(what: String) -> impl FnOnce(std::io::Error) -> AccessError {
    move |source| AccessError::Io { what, source }
}

/// Writes `content` to a new file readable by its owner only.
fn write_new(path: &Path, content: &[u8]) -> Result<(), AccessError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(io(format!("cannot write {}", path.display())))
}

/// On a deployment without principals, creates the first admin and writes
/// its token to `<data_dir>/admin.token`; returns that path when it did.
pub async fn first_admin(tokens: &TokenStore, data_dir: &Path) -> Result<Option<PathBuf>, AccessError> {
    if !tokens.is_empty().await? {
        return Ok(None);
    }
    std::fs::create_dir_all(data_dir).map_err(io(format!("cannot create {}", data_dir.display())))?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    // A file left by an earlier deployment's database would hold a token
    // that no longer works: replace it.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io(format!("cannot replace {}", path.display()))(e));
        }
        _ => {}
    }
    let token = tokens.create(FIRST_ADMIN, Role::Admin, &[], None).await?;
    write_new(&path, format!("{token}\n").as_bytes())?;
    Ok(Some(path))
}

/// The admin token written by [`first_admin`], if it is still there.
pub fn read_admin_token(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_string())
}

/// The pseudonym key at `path`, created (256 random bits) when missing.
pub fn pseudonym_key(path: &Path) -> Result<Vec<u8>, AccessError> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => {
            return Err(AccessError::Invalid(format!(
                "the pseudonym key {} is shorter than 32 bytes",
                path.display()
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io(format!("cannot read {}", path.display()))(e));
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    let mut key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut key);
    write_new(path, &key)?;
    Ok(key)
}
