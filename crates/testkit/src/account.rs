//! Accounts and devices for messaging tests, straight over [`RawClient`]:
//! registration without the CLI, further connections on the same session (so
//! no TOTP step is spent twice), and device binding.

use crate::{raw::RawClient, server::ServerProcess, totp};
use conclave_proto::{Bytes, DeviceId, Reply, Request};

/// A registered account and its session.
#[derive(Debug, Clone)]
pub struct Account {
    /// Lower-case username.
    pub username: String,
    /// Base32 TOTP secret.
    pub secret: String,
    /// The session token from registration; [`Account::connect`] uses it.
    pub token: String,
    /// The one-time recovery codes.
    pub recovery_codes: Vec<String>,
    /// The device cookie registration issued to this client.
    pub device_cookie: Option<String>,
}

impl Account {
    /// Registers `username` and returns the account with the registering
    /// connection, which is logged in.
    ///
    /// # Panics
    /// If registration fails.
    pub async fn register(server: &ServerProcess, username: &str, password: &str) -> (Self, RawClient) {
        let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
        let secret = totp::new_secret();
        let reply = client
            .ok(Request::Register {
                username: username.to_owned(),
                password: password.to_owned(),
                totp_secret: secret.clone(),
                totp_code: totp::code_now(&secret),
                registration_token: None,
            })
            .await;
        let Reply::Registered { user, recovery_codes, token, device_cookie, .. } = reply else {
            panic!("unexpected reply to register: {reply:?}")
        };
        (Self { username: user.username, secret, token, recovery_codes, device_cookie }, client)
    }

    /// A new connection authenticated with this account's session.
    ///
    /// # Panics
    /// If the session is refused.
    pub async fn connect(&self, server: &ServerProcess) -> RawClient {
        let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
        client.ok(Request::Authenticate { token: self.token.clone() }).await;
        client
    }
}

impl RawClient {
    /// Binds this connection to a device (a new one when `device` is `None`)
    /// with `signature_key`; returns its id and the one-time KeyPackages left.
    ///
    /// # Panics
    /// If binding fails.
    pub async fn bind_device(&mut self, device: Option<DeviceId>, signature_key: &[u8]) -> (DeviceId, u32) {
        let reply = self
            .ok(Request::Device { device_id: device, signature_key: Bytes(signature_key.to_vec()) })
            .await;
        let Reply::Device { device_id, key_packages_left, .. } = reply else {
            panic!("unexpected reply to device: {reply:?}")
        };
        (device_id, key_packages_left)
    }
}
