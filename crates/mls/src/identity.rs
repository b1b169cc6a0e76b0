//! [`Identity`]: who a leaf of an MLS group is.

use crate::error::{Error, Result};
use openmls::prelude::{BasicCredential, Credential};
use std::{fmt, str::FromStr};

/// Who a leaf is: one device of one user.
///
/// It travels in the leaf's `BasicCredential` as the UTF-8 text `username/device_id`
/// (for example `alice/3`). The server binds the device's signature key to the
/// account, so an identity is only as trustworthy as that binding: compare a
/// member's signature key ([`MlsState::member_keys`](super::MlsState::member_keys))
/// with what the server says about the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The account's username.
    pub user: String,
    /// The device id the server assigned.
    pub device: i64,
}

/// A credential identity that is not `username/device_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MLS identity {0:?}: expected \"username/device_id\"")]
pub struct InvalidIdentity(pub String);

impl Identity {
    /// An identity from its parts.
    pub fn new(user: impl Into<String>, device: i64) -> Self {
        Self { user: user.into(), device }
    }

    /// The bytes carried in the `BasicCredential`.
    #[must_use]
    pub fn to_credential_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Parses the identity carried in a `BasicCredential`.
    ///
    /// # Errors
    /// [`InvalidIdentity`] if the bytes are not `username/device_id` in UTF-8.
    pub fn from_credential_bytes(bytes: &[u8]) -> Result<Self, InvalidIdentity> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| InvalidIdentity(String::from_utf8_lossy(bytes).into_owned()))?;
        text.parse()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user, self.device)
    }
}

impl FromStr for Identity {
    type Err = InvalidIdentity;

    /// Parses `username/device_id`. The device id is what follows the last `/`; the
    /// username must be non-empty and free of control characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidIdentity(s.to_owned());
        let (user, device) = s.rsplit_once('/').ok_or_else(invalid)?;
        if user.is_empty() || user.chars().any(char::is_control) {
            return Err(invalid());
        }
        // `i64::from_str` accepts a leading `+`; the canonical form has none.
        if device.starts_with('+') {
            return Err(invalid());
        }
        let device = device.parse().map_err(|_| invalid())?;
        Ok(Self { user: user.to_owned(), device })
    }
}

/// The identity in a leaf's credential.
///
/// # Errors
/// [`Error::Refused`] for a credential that is not a basic credential;
/// [`Error::InvalidIdentity`] for one that is not `username/device_id`.
pub fn identity_of(credential: &Credential) -> Result<Identity> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| Error::Refused { what: "credential", reason: "not a basic credential" })?;
    Ok(Identity::from_credential_bytes(basic.identity())?)
}
