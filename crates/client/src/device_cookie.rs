//! Device cookies: what tells a server that this client home logged in as a
//! user before.
//!
//! A server issues one with every successful `login` and `register`, and takes
//! the one it issued last back with the next `login` as that user. With it, the
//! login is judged on this device's own failures: someone guessing the user's
//! password elsewhere can put the account's other logins into a back-off, but
//! not this device's. The server replaces the cookie at each login, so only the
//! newest is kept, per server and user, in `device_cookies.json` (mode 0600: it
//! is a credential, though it grants nothing without the password and code).
//! It stays across `logout`: the device is still one the user logged in from.

use crate::{
    address::ServerAddress,
    error::{ClientError, Result},
    home::write_private,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    fmt, fs, io,
    path::{Path, PathBuf},
};

/// A device cookie. `Debug` hides it; sending it takes a deliberate
/// [`DeviceCookie::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceCookie(String);

impl DeviceCookie {
    /// Wraps a cookie received from the server.
    #[must_use]
    pub fn new(cookie: String) -> Self {
        Self(cookie)
    }

    /// The cookie itself, to send with `login`. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCookie(<redacted>)")
    }
}

/// Cookies by server (`HOST:PORT`), then by username.
type Cookies = BTreeMap<String, BTreeMap<String, DeviceCookie>>;

/// The file of a home's device cookies. Read and written whole each time: it
/// is small, and another `conclave` process may have changed it meanwhile.
#[derive(Debug, Clone)]
pub struct DeviceCookies {
    /// The file; it need not exist yet.
    path: PathBuf,
}

impl DeviceCookies {
    /// The file at `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the file is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cookie for logging in to `server` as `username` (lower case), if
    /// this home has one.
    ///
    /// # Errors
    /// [`ClientError::File`] if the file exists but cannot be read,
    /// [`ClientError::Corrupt`] if it is not a cookie file.
    pub fn get(&self, server: &ServerAddress, username: &str) -> Result<Option<DeviceCookie>> {
        Ok(self.read()?.get(&server.to_string()).and_then(|users| users.get(username)).cloned())
    }

    /// Keeps `cookie` for `server` and `username`, replacing the one before.
    ///
    /// # Errors
    /// As [`DeviceCookies::get`], and [`ClientError::File`] if the file cannot
    /// be written.
    pub fn put(&self, server: &ServerAddress, username: &str, cookie: DeviceCookie) -> Result<()> {
        let mut cookies = self.read()?;
        cookies.entry(server.to_string()).or_default().insert(username.to_owned(), cookie);
        let mut text = serde_json::to_string_pretty(&cookies)
            .map_err(|err| ClientError::Corrupt { path: self.path.clone(), reason: err.to_string() })?;
        text.push('\n');
        write_private(&self.path, text.as_bytes())
    }

    fn read(&self) -> Result<Cookies> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Cookies::new()),
            Err(source) => return Err(ClientError::File { path: self.path.clone(), source }),
        };
        serde_json::from_str(&text).map_err(|err| ClientError::Corrupt {
            path: self.path.clone(),
            reason: format!("not a device cookie file: {err}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn cookies_are_kept_per_server_and_user_privately_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cookies = DeviceCookies::new(dir.path().join("device_cookies.json"));
        let (a, b): (ServerAddress, ServerAddress) =
            ("chat.example.org:8443".parse().unwrap(), "127.0.0.1:7443".parse().unwrap());
        assert_eq!(cookies.get(&a, "alice").unwrap(), None);
        cookies.put(&a, "alice", DeviceCookie::new("one".into())).unwrap();
        cookies.put(&b, "alice", DeviceCookie::new("two".into())).unwrap();
        cookies.put(&a, "bob", DeviceCookie::new("three".into())).unwrap();
        cookies.put(&a, "alice", DeviceCookie::new("four".into())).unwrap();
        assert_eq!(cookies.get(&a, "alice").unwrap(), Some(DeviceCookie::new("four".into())));
        assert_eq!(cookies.get(&b, "alice").unwrap(), Some(DeviceCookie::new("two".into())));
        assert_eq!(cookies.get(&a, "bob").unwrap(), Some(DeviceCookie::new("three".into())));
        assert_eq!(cookies.get(&b, "bob").unwrap(), None);
        let mode = fs::metadata(cookies.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!format!("{:?}", DeviceCookie::new("four".into())).contains("four"));
    }

    #[test]
    fn a_corrupt_file_is_reported_not_treated_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let cookies = DeviceCookies::new(dir.path().join("device_cookies.json"));
        fs::write(cookies.path(), "{not json").unwrap();
        let server: ServerAddress = "127.0.0.1:7443".parse().unwrap();
        assert!(matches!(cookies.get(&server, "alice"), Err(ClientError::Corrupt { .. })));
    }
}
