//! `device.json`: which server device this client home is.

use crate::{
    error::{ClientError, Result},
    home::Home,
};
use conclave_proto::DeviceId;
use serde::{Deserialize, Serialize};

const DEVICE_FILE: &str = "device.json";

/// This home's device as registered on its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The server the device is registered with (`HOST:PORT`).
    pub server: String,
    /// The user it belongs to.
    pub username: String,
    /// The id the server assigned.
    pub device_id: DeviceId,
}

impl DeviceRecord {
    /// The saved device, if this home has registered one.
    ///
    /// # Errors
    /// If the file exists but cannot be read or parsed.
    pub fn load(home: &Home) -> Result<Option<Self>> {
        let path = home.path().join(DEVICE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ClientError::Corrupt { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::File { path, source: e }),
        }
    }

    /// Saves the device (mode 0600, atomically).
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn save(&self, home: &Home) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| ClientError::Protocol(e.to_string()))?;
        crate::home::write_private(&home.path().join(DEVICE_FILE), &bytes)
    }

    /// Forgets the saved device (the server retired it), so the home
    /// registers a new one.
    ///
    /// # Errors
    /// If the file exists and cannot be removed.
    pub fn forget(home: &Home) -> Result<()> {
        remove_if_present(&home.path().join(DEVICE_FILE))
    }
}

/// Removes the file at `path`; a file that is not there is no error.
///
/// # Errors
/// If the file exists and cannot be removed.
pub(crate) fn remove_if_present(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::File { path: path.to_owned(), source: e }),
    }
}
