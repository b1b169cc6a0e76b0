//! `conclave admin registration-token`: invitations to register on a server
//! whose `registration` setting is `invite`. Like the other admin commands it
//! works on the server's storage directly.

use crate::output::{table, utc_minutes};

use super::storage::StorageArgs;
use conclave_server::registration::{self, TokenInfo};
use std::time::Duration;

/// Flags of `conclave admin registration-token`.
#[derive(Debug, clap::Args)]
pub struct RegistrationTokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Creates a token and prints it: this is the only time it is shown (the
    /// server keeps only a hash of its secret). Give it to the person invited;
    /// they register with `conclave register --token TOKEN`.
    Create {
        /// Registrations the token allows.
        #[arg(long, value_name = "N", default_value_t = 1)]
        uses: u32,
        /// How long it stays usable: `30m`, `12h`, `7d`, ... (at most a year).
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
        expires: Duration,
        /// Machine-readable output: one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Lists every token with its uses, expiry and state (never the token).
    List {
        /// Machine-readable output: a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revokes a token by its id (the part before `-`, as `list` shows it).
    Revoke {
        /// The token's id.
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// Runs a `registration-token` command.
pub async fn run(args: RegistrationTokenArgs) -> anyhow::Result<()> {
    match args.command {
        TokenCommand::Create { uses, expires, json, storage } => {
            let (store, audit) = storage.open_with_audit().await?;
            let created = registration::create(&store, &audit, uses, expires).await;
            store.close().await;
            let created = created?;
            if json {
                let value = serde_json::json!({
                    "id": created.id, "token": created.token,
                    "max_uses": created.max_uses, "expires_at": created.expires_at,
                });
                println!("{value}");
            } else {
                let plural = if created.max_uses == 1 { "" } else { "s" };
                println!(
                    "Registration token (shown only now):\n\n    {}\n\n\
                     It allows {} registration{plural} until {} UTC; its id is {}.\n\
                     Register with: conclave register --server HOST:PORT --user NAME --token {}\n\
                     (The server must run with registration = \"invite\" for tokens to matter.)",
                    created.token,
                    created.max_uses,
                    utc_minutes(created.expires_at),
                    created.id,
                    created.token,
                );
            }
            Ok(())
        }
        TokenCommand::List { json, storage } => {
            let store = storage.open().await?;
            let tokens = registration::list(&store).await;
            store.close().await;
            print_list(&tokens?, json);
            Ok(())
        }
        TokenCommand::Revoke { id, storage } => {
            let (store, audit) = storage.open_with_audit().await?;
            let revoked = registration::revoke(&store, &audit, &id).await;
            store.close().await;
            revoked?;
            println!("Revoked registration token {}.", id.trim().to_ascii_lowercase());
            Ok(())
        }
    }
}

fn state(token: &TokenInfo) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if token.uses >= token.max_uses {
        "used up"
    } else if token.usable {
        "usable"
    } else {
        "expired"
    }
}

fn print_list(tokens: &[TokenInfo], json: bool) {
    if json {
        let values: Vec<serde_json::Value> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id, "uses": t.uses, "max_uses": t.max_uses, "created_at": t.created_at,
                    "expires_at": t.expires_at, "revoked_at": t.revoked_at, "state": state(t),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(values));
        return;
    }
    if tokens.is_empty() {
        println!("No registration tokens.");
        return;
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                format!("{}/{}", t.uses, t.max_uses),
                utc_minutes(t.created_at),
                utc_minutes(t.expires_at),
                state(t).to_owned(),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "USED", "CREATED (UTC)", "EXPIRES (UTC)", "STATE"], &rows));
}
