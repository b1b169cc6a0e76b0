//! Server keys kept in files beside (not inside) the database: the key that
//! encrypts TOTP secrets at rest and the key of the audit log's chain.
//!
//! A copy of the database alone reveals neither key, which is what makes them
//! worth keeping apart from it. Each file holds exactly 32 random bytes, is
//! created with mode 0600 on first start, and must be the same file on every
//! node that shares one database.

use rand::{TryRngCore, rngs::OsRng};
use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

/// Length of every key file, bytes.
pub(crate) const KEY_LEN: usize = 32;

/// Whether [`load_or_create`] found the key or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file existed.
    Found,
    /// The file did not exist and was created just now.
    Created,
}

/// Reads the key at `path`; `None` if there is no such file. Warns when the
/// file is readable by others than its owner.
///
/// # Errors
/// I/O errors, or a file that does not hold exactly [`KEY_LEN`] bytes.
pub(crate) fn load(path: &Path) -> io::Result<Option<[u8; KEY_LEN]>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} must hold exactly {KEY_LEN} bytes", path.display()),
        )
    })?;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "key file is readable by others");
    }
    Ok(Some(key))
}

/// Reads the key at `path`, or creates it (mode 0600, synced to disk) from the
/// operating system's random source if there is none.
///
/// # Errors
/// As [`load`]; I/O errors while creating the file (which is never
/// overwritten: a file that appears meanwhile fails the creation).
pub(crate) fn load_or_create(path: &Path, what: &str) -> io::Result<([u8; KEY_LEN], Origin)> {
    if let Some(key) = load(path)? {
        return Ok((key, Origin::Found));
    }
    let mut key = [0u8; KEY_LEN];
    OsRng.try_fill_bytes(&mut key).map_err(io::Error::other)?;
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(&key)?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "created the {what}");
    Ok((key, Origin::Created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_private_once_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("some.key");
        assert!(load(&path).unwrap().is_none());
        let (key, origin) = load_or_create(&path, "test key").unwrap();
        assert_eq!(origin, Origin::Created);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&path, "test key").unwrap(), (key, Origin::Found));
        fs::write(&path, b"short").unwrap();
        assert_eq!(load(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
