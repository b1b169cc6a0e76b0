//! How a client command reaches its server: the client home, the saved session,
//! and the decision whether to trust the server's certificate.
//!
//! Trust, in order: a pin in `known_hosts`; else `--ca-file`; else first contact,
//! where `--accept-fingerprint` or the user's answer to a prompt decides, and the
//! accepted fingerprint is remembered. A certificate that differs from the pin is
//! always a hard error.

use crate::{args::ClientOpts, prompt};
use anyhow::{Context, anyhow, bail};
use conclave_client::{
    Client, ClientError, Fingerprint, Home, KnownHosts, SavedSession, ServerAddress, Trust, text::sanitize,
};

/// The client name the server records for sessions made by this CLI.
pub const CLIENT_NAME: &str = concat!("conclave-cli/", env!("CARGO_PKG_VERSION"));

/// Opens (creating if needed) the client home chosen by `--home`/`CONCLAVE_HOME`.
pub fn open_home(opts: &ClientOpts) -> anyhow::Result<Home> {
    let dir = Home::locate(opts.home.as_deref())?;
    Ok(Home::open(dir)?)
}

/// The saved session, or an error telling the user to log in.
pub fn saved_session(home: &Home) -> anyhow::Result<SavedSession> {
    match home.require_session() {
        Err(ClientError::NotLoggedIn) => Err(anyhow!(
            "not logged in: no saved session in {}; run `conclave login --server HOST:PORT --user NAME` first",
            home.path().display()
        )),
        other => Ok(other?),
    }
}

/// The server of a saved session, unless `--server` overrides it.
pub fn session_server(session: &SavedSession, flag: Option<&ServerAddress>) -> anyhow::Result<ServerAddress> {
    match flag {
        Some(server) => Ok(server.clone()),
        None => session
            .server
            .parse()
            .context("the saved session names an invalid server; pass --server HOST:PORT"),
    }
}

/// The error for a saved session the server no longer accepts.
pub fn session_gone(session: &SavedSession, server: &ServerAddress) -> anyhow::Error {
    anyhow!(
        "the saved session of {} on {server} is no longer valid (logged out, revoked or expired); \
         log in again with `conclave login --server {server} --user {}`",
        sanitize(&session.username),
        sanitize(&session.username)
    )
}

/// A decision about how to authenticate one server, made before connecting so
/// that commands can ask for it before any password prompt.
#[derive(Debug)]
pub struct Trusted {
    /// The server.
    server: ServerAddress,
    /// How its certificate is checked.
    trust: Trust,
    /// A fingerprint from `--accept-fingerprint`, pinned once a connection with it
    /// has worked.
    remember: Option<Fingerprint>,
    /// Where pins live, for saving and for error messages.
    known_hosts: KnownHosts,
}

/// Decides how to authenticate `server`: its pin, `--ca-file`, or first contact
/// (which may connect once to learn the fingerprint and ask the user).
pub async fn trust(home: &Home, server: &ServerAddress, opts: &ClientOpts) -> anyhow::Result<Trusted> {
    let known_hosts = home.known_hosts();
    let pinned = known_hosts.lookup(server)?;
    let (trust, remember) = match (pinned, &opts.ca_file, opts.accept_fingerprint) {
        (Some(pin), _, Some(given)) if pin != given => bail!(
            "{} already pins a different key for {server}: {pin}, not {given}. \
             If the server's key was legitimately replaced, delete the line for {server} \
             from that file and try again",
            known_hosts.path().display()
        ),
        (Some(pin), _, _) => (Trust::Pinned(pin), None),
        (None, Some(ca_file), _) => (Trust::CaFile(ca_file.clone()), None),
        (None, None, Some(given)) => (Trust::Pinned(given), Some(given)),
        (None, None, None) => (Trust::Pinned(first_contact(&known_hosts, server).await?), None),
    };
    Ok(Trusted { server: server.clone(), trust, remember, known_hosts })
}

/// [`trust`], then [`Trusted::connect`].
pub async fn connect(home: &Home, server: &ServerAddress, opts: &ClientOpts) -> anyhow::Result<Client> {
    trust(home, server, opts).await?.connect().await
}

impl Trusted {
    /// Connects and completes `hello`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let server = &self.server;
        match Client::connect_to(server, &self.trust, CLIENT_NAME).await {
            Ok(client) => {
                if let Some(fingerprint) = self.remember {
                    // The key's fingerprint, also when the user gave the
                    // certificate's (as `openssl x509 -fingerprint` shows it).
                    self.known_hosts.remember(server, client.server_key().unwrap_or(fingerprint))?;
                    // Quietly: the user named the fingerprint, and scripts compare
                    // stderr across runs.
                    tracing::info!(%server, file = %self.known_hosts.path().display(), "pinned the server's key");
                } else if let Trust::Pinned(pin) = self.trust {
                    // A certificate pin of an earlier version becomes the key's.
                    self.known_hosts.upgrade(server, pin, client.server_key())?;
                }
                Ok(client)
            }
            Err(ClientError::CertificateChanged { expected, presented }) if self.remember.is_some() => bail!(
                "the public key of {server} has SHA-256 fingerprint {presented}, not {expected} as given \
                 with --accept-fingerprint. Refusing to connect: check the fingerprint with the server's \
                 operator"
            ),
            Err(ClientError::CertificateChanged { expected, presented }) => {
                Err(certificate_changed(&self.known_hosts, server, expected, presented))
            }
            Err(err) => Err(connect_error(err, server)),
        }
    }
}

/// First contact: learns the fingerprint without sending anything, asks the user
/// (or explains `--accept-fingerprint` when nobody can be asked), and remembers
/// the answer.
async fn first_contact(known_hosts: &KnownHosts, server: &ServerAddress) -> anyhow::Result<Fingerprint> {
    let fingerprint = match Client::connect_to(server, &Trust::FirstUse, CLIENT_NAME).await {
        Err(ClientError::UnknownServer { fingerprint }) => fingerprint,
        Err(err) => return Err(connect_error(err, server)),
        Ok(_) => bail!("internal error: an unverified server was accepted"),
    };
    if !prompt::interactive() {
        bail!(
            "the authenticity of server {server} can't be established: its public key's SHA-256 \
             fingerprint is {fingerprint}, and there is no terminal to ask whether to trust it. \
             Compare the fingerprint with the one the server printed at startup and, if they match, \
             pass --accept-fingerprint {fingerprint} (or use --ca-file)"
        );
    }
    let question = format!(
        "The authenticity of server {server} can't be established.\n\
         Public key SHA-256 fingerprint: {fingerprint}\n\
         Compare it with the fingerprint the server printed at startup (ask its operator).\n\
         Trust it? [y/N] "
    );
    if !prompt::confirm(question).await? {
        bail!("server {server} not trusted; nothing was sent to it");
    }
    known_hosts.remember(server, fingerprint)?;
    eprintln!("Added the key of {server} to the known servers in {}.", known_hosts.path().display());
    Ok(fingerprint)
}

/// Names the server in a connection failure, unless the error already does.
fn connect_error(err: ClientError, server: &ServerAddress) -> anyhow::Error {
    match err {
        ClientError::Connect { .. } => err.into(),
        err => anyhow::Error::new(err).context(format!("cannot connect to {server}")),
    }
}

/// The hard error for a certificate that differs from its pin, ssh style.
fn certificate_changed(
    known_hosts: &KnownHosts,
    server: &ServerAddress,
    expected: Fingerprint,
    presented: Fingerprint,
) -> anyhow::Error {
    anyhow!(
        "\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         @    WARNING: THE SERVER'S KEY HAS CHANGED!               @\n\
         @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
         Someone could be intercepting your connection to {server} right now \
         (man-in-the-middle attack), or the server's key was replaced.\n\
         Expected SHA-256 fingerprint:  {expected}\n\
         Presented SHA-256 fingerprint: {presented}\n\
         The expected fingerprint is pinned in {}.\n\
         If the server's operator confirms the new fingerprint, delete the line for {server} \
         from that file and connect again.\n\
         Refusing to connect.",
        known_hosts.path().display()
    )
}

/// Closes a client whose work is done. The server may already have closed the
/// connection (after a logout, say); that is not worth an error.
pub async fn close(client: Client) {
    if let Err(err) = client.close().await {
        tracing::debug!(%err, "closing the connection failed");
    }
}

/// The saved session's connection: home opened, server trusted, connection
/// authenticated with the saved token (a clear error when it is no longer valid).
pub async fn authenticated(
    opts: &ClientOpts,
    server_flag: Option<&ServerAddress>,
) -> anyhow::Result<(Client, conclave_client::Identity, SavedSession, ServerAddress, Home)> {
    let home = open_home(opts)?;
    let session = saved_session(&home)?;
    let server = session_server(&session, server_flag)?;
    let mut client = connect(&home, &server, opts).await?;
    match client.authenticate(&session.token).await {
        Ok(identity) => Ok((client, identity, session, server, home)),
        Err(err) if err.is_session_gone() => Err(session_gone(&session, &server)),
        Err(err) => Err(err.into()),
    }
}

/// The saved session's device, connected and caught up: authenticates, binds the
/// device (registering it on first use), tops up KeyPackages and joins the lobby.
pub async fn messenger(
    opts: &crate::args::MessagingOpts,
) -> anyhow::Result<(conclave_client::Messenger, Home)> {
    let (client, _, session, _, home) = authenticated(&opts.client, opts.server.as_ref()).await?;
    let messenger = conclave_client::Messenger::start(client, &home, &session.username).await?;
    Ok((messenger, home))
}
