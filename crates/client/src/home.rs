//! The client home directory: where a user's session and pinned servers live.
//!
//! It holds secrets (the session token), so the directory is created with mode
//! 0700 and every file with mode 0600, and files are replaced atomically (write a
//! temporary file, then rename) so a crash never leaves half a session behind.

use crate::{
    device_cookie::DeviceCookies,
    error::{ClientError, Result},
    known_hosts::KnownHosts,
};
use conclave_proto::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use std::{
    fmt,
    fs::{self, DirBuilder, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

/// Environment variable naming the home directory when `--home` is not given.
pub const HOME_ENV: &str = "CONCLAVE_HOME";

const SESSION_FILE: &str = "session.json";
const KNOWN_HOSTS_FILE: &str = "known_hosts";
const DEVICE_COOKIES_FILE: &str = "device_cookies.json";

/// An opened client home directory.
#[derive(Debug, Clone)]
pub struct Home {
    /// The directory; exists and was created private if it was created at all.
    dir: PathBuf,
}

/// The secret bearer token of a session.
///
/// Whoever holds it is logged in as the user, so `Debug` hides it and there is no
/// `Display`: printing it takes a deliberate [`SessionToken::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(String);

impl SessionToken {
    /// Wraps a token received from the server.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token itself, to send in `authenticate`. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The login that `session.json` remembers between commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSession {
    /// `HOST:PORT` of the server the session belongs to.
    pub server: String,
    /// The account's (lower-case) username.
    pub username: String,
    /// The account's permanent id.
    pub user_id: UserId,
    /// The session's public id (shown by `sessions`, used to revoke).
    pub session_id: SessionId,
    /// The secret that authenticates new connections.
    pub token: SessionToken,
}

impl Home {
    /// Chooses the home directory: `explicit` (from `--home`) if given, else
    /// `$CONCLAVE_HOME` if set and non-empty, else `conclave` in the platform's data
    /// directory (`~/.local/share/conclave` on Linux).
    ///
    /// # Errors
    /// [`ClientError::NoHome`] when none of those is available.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
        if let Some(dir) = explicit {
            return Ok(dir.to_owned());
        }
        if let Some(dir) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        dirs::data_dir().map(|dir| dir.join("conclave")).ok_or(ClientError::NoHome)
    }

    /// Opens `dir`, creating it (and missing parents) with mode 0700 if needed.
    /// An existing directory is used as it is: the secrets in it are protected by
    /// their own mode 0600, so looser directory permissions only reveal file names
    /// (and are logged at info level).
    ///
    /// # Errors
    /// [`ClientError::File`] when the directory cannot be created or is not one.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| file_error(&dir, source))?;
        let meta = fs::metadata(&dir).map_err(|source| file_error(&dir, source))?;
        if !meta.is_dir() {
            return Err(file_error(&dir, io::Error::other("not a directory")));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::info!(
                dir = %dir.display(),
                "the Conclave home directory is accessible to other users; consider `chmod 700` on it"
            );
        }
        Ok(Self { dir })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The pinned server certificates of this home.
    #[must_use]
    pub fn known_hosts(&self) -> KnownHosts {
        KnownHosts::new(self.dir.join(KNOWN_HOSTS_FILE))
    }

    /// The device cookies this home got from servers (see
    /// [`crate::device_cookie`]).
    #[must_use]
    pub fn device_cookies(&self) -> DeviceCookies {
        DeviceCookies::new(self.dir.join(DEVICE_COOKIES_FILE))
    }

    /// Path of the session file (whether or not it exists).
    #[must_use]
    pub fn session_path(&self) -> PathBuf {
        self.dir.join(SESSION_FILE)
    }

    /// The saved session, if any.
    ///
    /// # Errors
    /// [`ClientError::File`] if it cannot be read, [`ClientError::Corrupt`] if it
    /// is not a valid session file.
    pub fn load_session(&self) -> Result<Option<SavedSession>> {
        let path = self.session_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(file_error(&path, source)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| ClientError::Corrupt { path, reason: format!("not a session file: {err}") })
    }

    /// The saved session, for commands that need one.
    ///
    /// # Errors
    /// [`ClientError::NotLoggedIn`] when there is none; otherwise as
    /// [`Home::load_session`].
    pub fn require_session(&self) -> Result<SavedSession> {
        self.load_session()?.ok_or(ClientError::NotLoggedIn)
    }

    /// Saves `session` (mode 0600, atomically), replacing any earlier one.
    ///
    /// # Errors
    /// [`ClientError::File`] when it cannot be written.
    pub fn save_session(&self, session: &SavedSession) -> Result<()> {
        let mut text = serde_json::to_string_pretty(session)
            .map_err(|err| ClientError::Corrupt { path: self.session_path(), reason: err.to_string() })?;
        text.push('\n');
        write_private(&self.session_path(), text.as_bytes())
    }

    /// Deletes the saved session. Returns whether there was one.
    ///
    /// # Errors
    /// [`ClientError::File`] when it exists but cannot be removed.
    pub fn remove_session(&self) -> Result<bool> {
        let path = self.session_path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(file_error(&path, source)),
        }
    }
}

/// Replaces `path` with `contents`, readable and writable by the owner only.
///
/// Writes a new temporary file beside it (created exclusively, so an attacker's
/// pre-planted file or symlink is never followed), syncs it, renames it over
/// `path`, and syncs the directory so the rename survives a crash.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp =
        dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|source| {
        // Best effort: the temporary file is garbage whatever failed.
        if let Err(err) = fs::remove_file(&tmp)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(file = %tmp.display(), %err, "could not remove temporary file");
        }
        file_error(path, source)
    })
}

fn file_error(path: &Path, source: io::Error) -> ClientError {
    ClientError::File { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn session() -> SavedSession {
        SavedSession {
            server: "chat.example.org:8443".into(),
            username: "alice".into(),
            user_id: UserId(7),
            session_id: SessionId("s-1".into()),
            token: SessionToken::new("c2VjcmV0".into()),
        }
    }

    #[test]
    fn creates_private_directory_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("home");
        let home = Home::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        home.save_session(&session()).unwrap();
        assert_eq!(mode(&home.session_path()), 0o600);
        // Rewriting keeps the mode and leaves no temporary files behind.
        home.save_session(&session()).unwrap();
        assert_eq!(mode(&home.session_path()), 0o600);
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [SESSION_FILE]);
    }

    #[test]
    fn session_round_trips_and_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::open(tmp.path()).unwrap();
        assert_eq!(home.load_session().unwrap(), None);
        home.save_session(&session()).unwrap();
        assert_eq!(home.load_session().unwrap(), Some(session()));
        assert!(home.remove_session().unwrap());
        assert!(!home.remove_session().unwrap());
        assert_eq!(home.load_session().unwrap(), None);
    }

    #[test]
    fn corrupt_session_file_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::open(tmp.path()).unwrap();
        fs::write(home.session_path(), "{not json").unwrap();
        assert!(matches!(home.load_session(), Err(ClientError::Corrupt { .. })));
    }

    #[test]
    fn token_is_not_in_debug_output() {
        let text = format!("{:?}", session());
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn explicit_home_wins() {
        let dir = Home::locate(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(dir, Path::new("/x/y"));
    }
}
