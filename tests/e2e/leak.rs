//! Secrets never reach the server's storage or logs in the clear.

use crate::{PASSWORD, bin, server};
use conclave_proto::{Outcome, Reply, Request, SecondFactor};
use conclave_testkit::{Backend, Home, RawClient, backend_tests, code_now, leak};

backend_tests!(passwords_totp_secrets_and_tokens_are_not_stored_or_logged);

/// After registration, a successful and a failed login, the password, the TOTP
/// secret (base32 and raw), a session token, a device cookie and a recovery code
/// appear nowhere in the database (files or tables) or the server log.
async fn passwords_totp_secrets_and_tokens_are_not_stored_or_logged(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let reg = Home::new(bin()).register(&server, "victor", PASSWORD);
    Home::new(bin()).login(&server, "victor", "another secret password", "123456").fails();
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let response = client
        .request(Request::Login {
            username: "victor".into(),
            password: PASSWORD.into(),
            second_factor: SecondFactor::Totp(code_now(&reg.secret)),
            device_cookie: None,
        })
        .await;
    let Outcome::Ok(Reply::LoggedIn { token, device_cookie: Some(cookie), .. }) = response.outcome else {
        panic!("{response:?}")
    };
    server.stop();

    let raw_secret = totp_rs::Secret::Encoded(reg.secret.clone()).to_bytes().expect("base32");
    leak::assert_absent(&server, PASSWORD.as_bytes()).await;
    leak::assert_absent(&server, b"another secret password").await;
    leak::assert_absent(&server, reg.secret.as_bytes()).await;
    leak::assert_absent(&server, &raw_secret).await;
    leak::assert_absent(&server, token.as_bytes()).await;
    leak::assert_absent(&server, cookie.as_bytes()).await;
    leak::assert_absent(&server, reg.recovery_codes[0].as_bytes()).await;
    leak::assert_absent(&server, reg.recovery_codes[0].replace('-', "").as_bytes()).await;
}
