//! `conclave login`: password plus second factor; keeps the new session.

use crate::{
    args::LoginArgs,
    connect,
    output::{Output, untrusted},
    prompt,
};
use conclave_client::Messenger;
use conclave_proto::{SecondFactor, validate};
use serde_json::json;

/// Logs in.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let home = connect::open_home(&args.client)?;
    let server = &args.server;

    // Settle the server's identity before the user types any secret.
    let trusted = connect::trust(&home, server, &args.client).await?;
    let password = prompt::password().await?;
    let second_factor = match (args.totp_code, args.recovery_code) {
        (Some(code), _) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::Recovery(code),
        (None, None) => {
            prompt::ask(
                "Enter the 6-digit code from your authenticator app (or a recovery code): ",
                parse_code,
            )
            .await?
        }
    };
    let used_recovery = matches!(second_factor, SecondFactor::Recovery(_));

    // Connect only now, after every question, so no idle timeout can hit.
    let mut client = trusted.connect().await?;
    // No context added: the server's message says "login failed" already, and it
    // must read the same whatever went wrong (unknown user, password, code).
    // The home's device cookie goes along: failures elsewhere do not lock out
    // a device that logged in before.
    let logged_in = client.login_from(&home, &args.user, &password, second_factor).await?;
    let session = &logged_in.session;
    home.save_session(&session.to_saved(server))?;
    // Bind this home's device (registering it and its keys on first login) and
    // join the lobby, as every user does at first login.
    let messenger = Messenger::start(client, &home, &session.user.username).await?;
    messenger.close().await.ok();

    let value = json!({
        "user": session.user,
        "session_id": session.session_id,
        "recovery_codes_left": logged_in.recovery_codes_left,
    });
    out.result(&value, || {
        let mut text = format!(
            "Logged in to {server} as {} (user id {}).",
            untrusted(&session.user.username),
            session.user.id
        );
        if used_recovery {
            text.push_str(&format!(
                "\nYou used a recovery code; {} unused recovery code{} left.",
                logged_in.recovery_codes_left,
                if logged_in.recovery_codes_left == 1 { "" } else { "s" }
            ));
        }
        text
    })
}

/// A typed answer: six digits are a TOTP code, `xxxx-xxxx-xxxx-xxxx` a recovery code.
fn parse_code(answer: &str) -> Result<SecondFactor, String> {
    let compact: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
    if validate::is_totp_code(&compact) {
        Ok(SecondFactor::Totp(compact))
    } else if validate::normalize_recovery_code(answer).is_some() {
        Ok(SecondFactor::Recovery(answer.to_owned()))
    } else {
        Err("Enter the 6 digits your authenticator shows, or a recovery code like abcd-efgh-ijkl-mnop."
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        assert_eq!(parse_code("123 456"), Ok(SecondFactor::Totp("123456".into())));
        assert_eq!(
            parse_code("abcd-efgh-2345-67ab"),
            Ok(SecondFactor::Recovery("abcd-efgh-2345-67ab".into()))
        );
        assert!(parse_code("12345").is_err());
    }
}
