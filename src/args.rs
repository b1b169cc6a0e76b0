//! What the user typed: the clap types of every subcommand.
//!
//! Values are parsed into their real types here (server addresses, fingerprints,
//! usernames, codes), so a malformed value is a usage error before anything runs.
//! `serve` and `admin` define their flags beside their code in `cmd/`.

use crate::cmd;
use clap::{Args, Parser, Subcommand};
use conclave_client::{Fingerprint, ServerAddress};
use conclave_proto::validate;
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
Conclave is a self-hosted, end-to-end encrypted group chat. This one binary runs the \
server (`conclave serve`) and the clients.

Start a server, then register an account on it:

    conclave serve
    conclave register --server chat.example.org:8443 --user alice

The first time a client meets a server it shows the fingerprint of the server's public \
key and asks whether to trust it, like ssh; compare it with the fingerprint `conclave \
serve` printed. Accepted fingerprints are kept in the client home's `known_hosts`; \
they survive the server's certificate renewals.

Settings can also come from the environment (CONCLAVE_*), and a `.env` file in the \
current directory is read first.

Exit status:
    0  success
    1  the command failed (the reason is printed on stderr as `error: ...`)
    2  the command line is invalid (usage error)";

/// The `conclave` command line.
#[derive(Debug, Parser)]
#[command(
    name = "conclave",
    version,
    about = "Self-hosted, end-to-end encrypted group chat: server and clients in one binary",
    long_about = LONG_ABOUT,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives
    /// such as `conclave_server=debug,info`. Without it RUST_LOG is used, else
    /// `info` for `serve` and `warn` for the other commands. Logs go to stderr.
    #[arg(long, global = true, env = "CONCLAVE_LOG_LEVEL", value_name = "FILTER", help_heading = "Logging")]
    pub log_level: Option<String>,

    /// Write logs as JSON lines instead of text. The variable takes true/false,
    /// yes/no, on/off or 1/0.
    #[arg(
        long,
        global = true,
        env = "CONCLAVE_LOG_JSON",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Logging"
    )]
    pub log_json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once at start and matched once: the size of the largest variant
// (`serve`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    // Boxed: the server's settings outweigh every other command's arguments.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Operator commands that work on the server's storage directly.
    Admin(cmd::admin::AdminArgs),
    /// Create an account (password + authenticator app) and log in.
    #[command(long_about = REGISTER_ABOUT)]
    Register(RegisterArgs),
    /// Log in with password and authenticator code (or a recovery code).
    #[command(long_about = LOGIN_ABOUT)]
    Login(LoginArgs),
    /// End the saved session on the server and forget it locally.
    #[command(long_about = LOGOUT_ABOUT)]
    Logout(LogoutArgs),
    /// Show who the saved session is logged in as.
    #[command(long_about = WHOAMI_ABOUT)]
    Whoami(WhoamiArgs),
    /// List your sessions, or revoke one.
    #[command(long_about = SESSIONS_ABOUT)]
    Sessions(SessionsArgs),
    /// List your devices, or remove one (it leaves every room's encryption).
    #[command(long_about = DEVICES_ABOUT)]
    Devices(DevicesArgs),
    /// Send an end-to-end encrypted message to #room or @user.
    #[command(long_about = SEND_ABOUT)]
    Send(SendArgs),
    /// Catch up, then show a conversation's history from the local store.
    History(HistoryArgs),
    /// Delete a message for everyone (your own; room owners: any).
    Delete(DeleteArgs),
    /// Tell a conversation's online members that you are typing (never stored).
    Typing(TypingArgs),
    /// Stay connected and print events as they arrive (reconnects by itself).
    Listen(ListenArgs),
    /// List users and who is online.
    Users(UsersArgs),
    /// List your conversations and the public rooms.
    Rooms(MessagingOpts),
    /// Create, join, invite to, remove from, leave or list a room.
    #[command(subcommand)]
    Room(RoomCommand),
    /// The full-screen terminal chat client (log in or register there too).
    #[command(long_about = CHAT_ABOUT)]
    Chat(ChatArgs),
}

/// Options of every messaging command.
#[derive(Debug, Clone, Args)]
pub struct MessagingOpts {
    /// Talk to this server instead of the one the session was saved for.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    #[command(flatten)]
    pub client: ClientOpts,
}

const SEND_ABOUT: &str = "\
Send a message. TARGET is #room (or room), or @user for a direct conversation, which \
is created on first use. The message is encrypted on this device with MLS; the command \
returns once the server has durably stored the ciphertext, and prints the message id.

Examples:
    conclave send '#lobby' 'hello, everyone'
    conclave send @bob 'lunch?' --json";

/// `conclave send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// `#room` or `@user`.
    pub target: String,
    /// The text.
    pub text: String,
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// `#room` or `@user`.
    pub target: String,
    /// Show at most this many of the newest messages.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave typing`.
#[derive(Debug, Args)]
pub struct TypingArgs {
    /// `#room` or `@user`.
    pub target: String,
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `#room` or `@user`.
    pub target: String,
    /// The message id (from `send` or `history`).
    pub message: i64,
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// Only users online now.
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub opts: MessagingOpts,
}

/// `conclave room …`.
#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Create a room you own (private unless --public).
    Create {
        /// Name: 1-32 of a-z, 0-9, `_`, `-`.
        name: String,
        /// Anyone may join.
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        opts: MessagingOpts,
    },
    /// Join a public room (a no-op for rooms you are in).
    Join {
        /// The room.
        name: String,
        #[command(flatten)]
        opts: MessagingOpts,
    },
    /// Add people (all their devices) to a room you own.
    Invite {
        /// The room.
        name: String,
        /// The users: as many as you like, added a hundred per commit. Those in
        /// the room already are named and left as they are.
        #[arg(required = true, num_args = 1..)]
        users: Vec<String>,
        #[command(flatten)]
        opts: MessagingOpts,
    },
    /// Remove a user from a room you own: they can read nothing sent afterwards.
    Remove {
        /// The room.
        name: String,
        /// The user.
        user: String,
        #[command(flatten)]
        opts: MessagingOpts,
    },
    /// Leave a room.
    Leave {
        /// The room.
        name: String,
        #[command(flatten)]
        opts: MessagingOpts,
    },
    /// List a room's members and their devices.
    Members {
        /// The room.
        name: String,
        #[command(flatten)]
        opts: MessagingOpts,
    },
}

/// Options every client command shares.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client options")]
pub struct ClientOpts {
    /// Client home directory: saved session and known_hosts. Created with mode 0700.
    /// Default: $CONCLAVE_HOME, else `conclave` in the user's data directory
    /// (~/.local/share/conclave on Linux).
    #[arg(long, env = "CONCLAVE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print the result as JSON on stdout (prompts and notes still go to stderr).
    #[arg(long)]
    pub json: bool,

    /// On first contact, trust the server if its public key has this SHA-256
    /// fingerprint (hex, `:` separators allowed; the whole certificate's SHA-256
    /// works too) instead of asking. Compare it with what `conclave serve`
    /// printed. A different key is refused.
    #[arg(long, value_name = "HEX", conflicts_with = "ca_file")]
    pub accept_fingerprint: Option<Fingerprint>,

    /// Verify the server's certificate against the CA certificates in this PEM
    /// file (normal chain and host-name checks) instead of pinning it.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

const REGISTER_ABOUT: &str = "\
Create an account and log in.

The password is read from CONCLAVE_PASSWORD if set, otherwise asked for twice. \
Two-factor authentication is mandatory: unless --totp-secret is given, a new secret is \
generated and shown as a QR code (and as an otpauth:// URI and base32 text) for your \
authenticator app, and you are asked for the 6-digit code it shows. On success the \
session is saved in the client home and the one-time recovery codes are printed: \
they are shown only once.

A server may let people register only with a registration token from its operator \
(--token), or not at all; the command says so before asking for anything.

Examples:
    conclave register --server chat.example.org:8443 --user alice
    conclave register --server chat.example.org:8443 --user bob --token 0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz
    CONCLAVE_PASSWORD=... conclave register --server 127.0.0.1:8443 --user bot1 \\
        --totp-secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP --totp-code 123456 --json";

const LOGIN_ABOUT: &str = "\
Log in and save the session in the client home.

The password is read from CONCLAVE_PASSWORD if set, otherwise asked for. Without \
--totp-code or --recovery-code you are asked for the code from your authenticator app \
(a recovery code such as abcd-efgh-ijkl-mnop is accepted there too).

The client home keeps a device cookie per server and user (device_cookies.json): \
a login from this home is then judged on its own failed attempts, so someone \
guessing your password elsewhere cannot lock you out here.

Examples:
    conclave login --server chat.example.org:8443 --user alice
    conclave login --server chat.example.org:8443 --user alice --recovery-code abcd-efgh-ijkl-mnop";

const LOGOUT_ABOUT: &str = "\
End the saved session on the server and delete it from the client home. If the server \
says the session was already invalid, the local copy is deleted all the same.

Example:
    conclave logout";

const WHOAMI_ABOUT: &str = "\
Show the user, server and session id of the saved session, after checking with the \
server that it is still valid. Fails (exit status 1) when not logged in or when the \
session has ended.

Examples:
    conclave whoami
    conclave whoami --json";

const SESSIONS_ABOUT: &str = "\
List your live sessions (the current one is marked with *), or revoke one by its id. \
Times are UTC.

Examples:
    conclave sessions
    conclave sessions --revoke 3f2a9c0d";

const DEVICES_ABOUT: &str = "\
List your devices (client homes that logged in and were not logged out; this one is \
marked with *), or remove one you no longer have, such as a lost laptop. A removed \
device's session ends, it can never connect as that device again, and the members of \
its rooms remove it from the rooms' encryption with their next change, so it cannot \
read anything sent afterwards. Logging out or revoking a session does the same for \
its device. Times are UTC.

Examples:
    conclave devices
    conclave devices --remove 7";

const CHAT_ABOUT: &str = "\
The full-screen terminal chat client. With a saved session it opens straight into the \
chat; otherwise it starts on a login screen (server, username, password, authenticator \
code), where Ctrl-R switches to creating an account (the TOTP QR code is shown there). \
On first contact with a server it shows the public key fingerprint and asks, as the \
other commands do. It reconnects by itself; F1 or /help lists keys and commands.

Examples:
    conclave chat
    conclave chat --server chat.example.org:8443 --user alice";

/// `conclave chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Pre-fill the login form with this server (without a saved session).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    /// Pre-fill the login form with this username.
    #[arg(long, value_name = "NAME", value_parser = parse_username)]
    pub user: Option<String>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The server, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: ServerAddress,

    /// Username: 3 to 32 of a-z, 0-9, `_`, `.`, `-` (case-insensitive).
    #[arg(long, value_name = "NAME", value_parser = parse_username)]
    pub user: String,

    /// Use this base32 TOTP secret instead of generating one (for scripts and
    /// tests; note that command-line arguments are visible to other local users).
    #[arg(long, value_name = "BASE32")]
    pub totp_secret: Option<String>,

    /// The current 6-digit code for --totp-secret, instead of asking for it.
    #[arg(long, value_name = "CODE", requires = "totp_secret", value_parser = parse_totp_code)]
    pub totp_code: Option<String>,

    /// The registration token the server's operator gave you, for a server that
    /// lets people register only by invitation.
    #[arg(long, env = "CONCLAVE_REGISTRATION_TOKEN", value_name = "TOKEN", hide_env_values = true,
          value_parser = parse_registration_token)]
    pub token: Option<String>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: ServerAddress,

    /// Username (case-insensitive).
    #[arg(long, value_name = "NAME", value_parser = parse_username)]
    pub user: String,

    /// The current 6-digit code from your authenticator app, instead of asking.
    #[arg(long, value_name = "CODE", value_parser = parse_totp_code, conflicts_with = "recovery_code")]
    pub totp_code: Option<String>,

    /// Use one of your one-time recovery codes instead of a TOTP code.
    #[arg(long, value_name = "CODE", value_parser = parse_recovery_code)]
    pub recovery_code: Option<String>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Talk to this server instead of the one the session was saved for.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Talk to this server instead of the one the session was saved for.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Remove the device with this id (from the listing) instead of listing.
    #[arg(long, value_name = "ID")]
    pub remove: Option<i64>,

    /// Talk to this server instead of the one the session was saved for.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    #[command(flatten)]
    pub client: ClientOpts,
}

/// `conclave sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Revoke the session with this id (from the listing) instead of listing.
    #[arg(long, value_name = "ID", value_parser = parse_session_id)]
    pub revoke: Option<String>,

    /// Talk to this server instead of the one the session was saved for.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<ServerAddress>,

    #[command(flatten)]
    pub client: ClientOpts,
}

fn parse_username(raw: &str) -> Result<String, String> {
    validate::normalize_username(raw).map_err(|err| err.to_string())
}

/// Accepts `123456` and `123 456` (as some apps display it).
fn parse_totp_code(raw: &str) -> Result<String, String> {
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if validate::is_totp_code(&code) { Ok(code) } else { Err("a TOTP code is 6 digits".into()) }
}

fn parse_recovery_code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    match validate::normalize_recovery_code(code) {
        Some(_) => Ok(code.to_owned()),
        None => Err("a recovery code looks like abcd-efgh-ijkl-mnop (16 letters and digits 2-7)".into()),
    }
}

fn parse_registration_token(raw: &str) -> Result<String, String> {
    match validate::split_registration_token(raw) {
        Some(_) => Ok(raw.trim().to_owned()),
        None => Err("a registration token looks like 0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz".into()),
    }
}

fn parse_session_id(raw: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.is_empty() || id.chars().any(char::is_control) {
        Err("not a session id".into())
    } else {
        Ok(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn codes_are_checked_at_parse_time() {
        assert_eq!(parse_totp_code("123 456").unwrap(), "123456");
        assert!(parse_totp_code("12345").is_err());
        assert!(parse_recovery_code("abcd-efgh-2345-67ab").is_ok());
        assert!(parse_recovery_code("abcd").is_err());
        assert_eq!(parse_username("Alice").unwrap(), "alice");
        assert!(parse_username("a").is_err());
        assert!(parse_registration_token("0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz").is_ok());
        assert!(parse_registration_token("not-a-token").is_err());
    }
}
