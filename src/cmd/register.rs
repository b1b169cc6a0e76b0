//! `conclave register`: create an account with TOTP enrolled, then keep its
//! session.

use crate::{
    args::RegisterArgs,
    connect,
    output::{Output, untrusted},
    prompt,
};
use anyhow::{Context, bail};
use conclave_client::{Messenger, TotpSecret, client::remember_device, totp};
use conclave_proto::{RegistrationMode, validate};
use serde_json::json;

/// Registers an account.
pub async fn run(args: RegisterArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let home = connect::open_home(&args.client)?;
    let server = &args.server;

    // Settle the server's identity before the user types any secret.
    let trusted = connect::trust(&home, server, &args.client).await?;
    // And whether it lets this user register at all, before a password is
    // chosen or a secret enrolled in an authenticator for nothing.
    let probe = trusted.connect().await?;
    let mode = probe.registration_mode();
    probe.close().await.ok();
    match (mode, &args.token) {
        (RegistrationMode::Closed, _) => {
            bail!("registration is closed on {server}: ask its operator for an account")
        }
        (RegistrationMode::Invite, None) => bail!(
            "{server} lets people register only with a registration token from its operator:              pass it with --token"
        ),
        (RegistrationMode::Open, Some(_)) => {
            out.info(format_args!("{server} is open to everyone: the registration token is not needed."));
        }
        _ => {}
    }

    let password = prompt::new_password().await?;
    let (secret, generated) = match &args.totp_secret {
        Some(text) => (TotpSecret::from_base32(text)?, false),
        None => (TotpSecret::generate(), true),
    };
    if generated {
        show_enrolment(out, &secret, &args.user, server.host())?;
    }
    let code = match args.totp_code {
        Some(code) => code,
        None => {
            prompt::ask("Enter the 6-digit code from your authenticator app: ", |answer| {
                let code: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
                if validate::is_totp_code(&code) { Ok(code) } else { Err("A code is 6 digits.".into()) }
            })
            .await?
        }
    };

    // Connect only now, after every question, so no idle timeout can hit.
    let mut client = trusted.connect().await?;
    let registered = client
        .register(&args.user, &password, &secret, &code, args.token.as_deref())
        .await
        .context("registration failed")?;
    let session = &registered.session;
    home.save_session(&session.to_saved(server))?;
    remember_device(&home, server, &session.user.username, registered.device_cookie.clone());
    // Register this home as the account's first device and join the lobby.
    let messenger = Messenger::start(client, &home, &session.user.username).await?;
    messenger.close().await.ok();

    let mut value = json!({
        "user": session.user,
        "session_id": session.session_id,
        "recovery_codes": registered.recovery_codes,
    });
    if generated {
        value["totp_secret"] = json!(secret.to_base32());
    }
    out.result(&value, || {
        let mut text = format!(
            "Registered {} (user id {}) on {server}; you are logged in.\n\n\
             Recovery codes: each one can replace an authenticator code once, if you lose your\n\
             authenticator. They are shown only this once: store them safely (for example in a\n\
             password manager or on paper), not on this computer alone.\n\n",
            untrusted(&session.user.username),
            session.user.id
        );
        for code in &registered.recovery_codes {
            text.push_str(&format!("    {}\n", untrusted(code)));
        }
        text
    })
}

/// Shows the new secret as a QR code, an otpauth URI and base32 text.
fn show_enrolment(out: Output, secret: &TotpSecret, username: &str, host: &str) -> anyhow::Result<()> {
    let uri = secret.otpauth_uri(username, Some(host));
    let qr = totp::qr_code(&uri)?;
    out.info(format_args!(
        "Two-factor authentication: scan this QR code with your authenticator app\n\
         (Google Authenticator, Aegis, FreeOTP, 1Password, ...):\n\n{qr}\n\n\
         Or add the account by hand:\n    URI:    {uri}\n    Secret: {} (SHA-1, 6 digits, 30 seconds)\n",
        secret.to_base32()
    ));
    Ok(())
}
