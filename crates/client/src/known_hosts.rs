//! The `known_hosts` file: server certificates the user has trusted, like ssh's.
//!
//! Each line is `HOST:PORT <sha256-hex>`; blank lines and lines starting with `#`
//! are kept as they are. A server has at most one line. The hex is the SHA-256
//! of the server's public key, which survives certificate renewals; lines
//! written by earlier versions hold the SHA-256 of the whole certificate, which
//! still names that certificate and is replaced by its key's fingerprint on the
//! next connection that it verifies ([`KnownHosts::upgrade`]). To accept a
//! server's new key after a legitimate change, the user deletes its line.

use crate::{
    address::ServerAddress,
    error::{ClientError, Result},
    fingerprint::Fingerprint,
    home::write_private,
};
use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// A `known_hosts` file. Reads and writes go to disk each time: the file is tiny
/// and another `conclave` process may have changed it meanwhile.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    /// The file; it need not exist yet.
    path: PathBuf,
}

impl KnownHosts {
    /// The file at `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the file is, for messages that tell the user what to edit.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pinned fingerprint of `server`, if it is known.
    ///
    /// # Errors
    /// [`ClientError::File`] if the file exists but cannot be read,
    /// [`ClientError::Corrupt`] if a line is malformed (a pin file that cannot be
    /// read is never treated as empty).
    pub fn lookup(&self, server: &ServerAddress) -> Result<Option<Fingerprint>> {
        let key = server.to_string();
        for entry in self.entries()? {
            if let Line::Entry { host, fingerprint } = entry
                && host == key
            {
                return Ok(Some(fingerprint));
            }
        }
        Ok(None)
    }

    /// Pins `fingerprint` for `server`, replacing an earlier pin for it.
    ///
    /// # Errors
    /// As [`KnownHosts::lookup`], and [`ClientError::File`] if the file cannot be
    /// written.
    pub fn remember(&self, server: &ServerAddress, fingerprint: Fingerprint) -> Result<()> {
        let key = server.to_string();
        let mut lines = self.entries()?;
        lines.retain(|line| !matches!(line, Line::Entry { host, .. } if *host == key));
        lines.push(Line::Entry { host: key, fingerprint });
        self.write(&lines)
    }

    /// After a connection to `server` verified with `pin` (from this file),
    /// makes sure the file pins `key`, the public key fingerprint that
    /// connection saw: a certificate pin of an earlier version becomes the pin
    /// of the key it certified, so it keeps working once the server renews its
    /// certificate. Does nothing when the line already pins `key` or no longer
    /// pins `pin` (another process changed it). Returns whether it changed the
    /// file.
    ///
    /// # Errors
    /// As [`KnownHosts::remember`].
    pub fn upgrade(
        &self,
        server: &ServerAddress,
        pin: Fingerprint,
        key: Option<Fingerprint>,
    ) -> Result<bool> {
        let Some(key) = key else { return Ok(false) };
        if key == pin || self.lookup(server)? != Some(pin) {
            return Ok(false);
        }
        self.remember(server, key)?;
        tracing::info!(%server, file = %self.path.display(), "pinned the server's public key instead of its certificate");
        Ok(true)
    }

    /// Removes the pin for `server`. Returns whether there was one.
    ///
    /// # Errors
    /// As [`KnownHosts::remember`].
    pub fn forget(&self, server: &ServerAddress) -> Result<bool> {
        let key = server.to_string();
        let mut lines = self.entries()?;
        let before = lines.len();
        lines.retain(|line| !matches!(line, Line::Entry { host, .. } if *host == key));
        if lines.len() == before {
            return Ok(false);
        }
        self.write(&lines)?;
        Ok(true)
    }

    fn entries(&self) -> Result<Vec<Line>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ClientError::File { path: self.path.clone(), source }),
        };
        text.lines()
            .enumerate()
            .map(|(index, line)| {
                Line::parse(line).map_err(|reason| ClientError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("line {}: {reason}", index + 1),
                })
            })
            .collect()
    }

    fn write(&self, lines: &[Line]) -> Result<()> {
        let mut text = String::new();
        for line in lines {
            match line {
                Line::Other(raw) => text.push_str(raw),
                Line::Entry { host, fingerprint } => {
                    text.push_str(host);
                    text.push(' ');
                    text.push_str(&fingerprint.to_string());
                }
            }
            text.push('\n');
        }
        write_private(&self.path, text.as_bytes())
    }
}

/// One line of the file.
#[derive(Debug)]
enum Line {
    /// A pin.
    Entry { host: String, fingerprint: Fingerprint },
    /// A comment or blank line, kept verbatim.
    Other(String),
}

impl Line {
    fn parse(line: &str) -> Result<Self, String> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(Self::Other(line.to_owned()));
        }
        let mut fields = trimmed.split_whitespace();
        let (Some(host), Some(hex), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err("expected `HOST:PORT FINGERPRINT`".into());
        };
        let server: ServerAddress =
            host.parse().map_err(|err: crate::address::AddressError| err.to_string())?;
        let fingerprint = hex.parse().map_err(|err| format!("{err}"))?;
        Ok(Self::Entry { host: server.to_string(), fingerprint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn addr(text: &str) -> ServerAddress {
        text.parse().unwrap()
    }

    #[test]
    fn remembers_looks_up_replaces_and_forgets() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::new(tmp.path().join("known_hosts"));
        let a = Fingerprint::of_der(b"a");
        let b = Fingerprint::of_der(b"b");
        assert_eq!(hosts.lookup(&addr("one.example:1")).unwrap(), None);

        hosts.remember(&addr("one.example:1"), a).unwrap();
        hosts.remember(&addr("[::1]:2"), b).unwrap();
        assert_eq!(hosts.lookup(&addr("ONE.example:1")).unwrap(), Some(a));
        assert_eq!(hosts.lookup(&addr("[::1]:2")).unwrap(), Some(b));
        assert_eq!(hosts.lookup(&addr("one.example:2")).unwrap(), None);
        let mode = fs::metadata(hosts.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        hosts.remember(&addr("one.example:1"), b).unwrap();
        assert_eq!(hosts.lookup(&addr("one.example:1")).unwrap(), Some(b));
        let text = fs::read_to_string(hosts.path()).unwrap();
        assert_eq!(text, format!("[::1]:2 {b}\none.example:1 {b}\n"));

        assert!(hosts.forget(&addr("one.example:1")).unwrap());
        assert!(!hosts.forget(&addr("one.example:1")).unwrap());
        assert_eq!(hosts.lookup(&addr("one.example:1")).unwrap(), None);
    }

    #[test]
    fn a_certificate_pin_is_upgraded_to_the_key_it_certified_once() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::new(tmp.path().join("known_hosts"));
        let server = addr("chat.example:7443");
        let (certificate, key, other) =
            (Fingerprint::of_der(b"cert"), Fingerprint::of_der(b"key"), Fingerprint::of_der(b"other"));
        hosts.remember(&server, certificate).unwrap();
        assert!(!hosts.upgrade(&server, certificate, None).unwrap());
        assert!(hosts.upgrade(&server, certificate, Some(key)).unwrap());
        assert_eq!(hosts.lookup(&server).unwrap(), Some(key));
        assert!(!hosts.upgrade(&server, key, Some(key)).unwrap(), "already the key");
        assert!(!hosts.upgrade(&server, certificate, Some(other)).unwrap(), "the line changed meanwhile");
        assert_eq!(hosts.lookup(&server).unwrap(), Some(key));
    }

    #[test]
    fn keeps_comments_and_refuses_malformed_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("known_hosts");
        let a = Fingerprint::of_der(b"a");
        fs::write(&path, format!("# my servers\n\nhost.example:9 {a}\n")).unwrap();
        let hosts = KnownHosts::new(&path);
        assert_eq!(hosts.lookup(&addr("host.example:9")).unwrap(), Some(a));
        hosts.remember(&addr("other.example:9"), a).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("# my servers\n\nhost.example:9 {a}\n")), "{text}");

        fs::write(&path, "host.example:9 nothex\n").unwrap();
        let err = hosts.lookup(&addr("host.example:9")).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
