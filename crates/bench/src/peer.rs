//! [`Peer`]: one member's connection, speaking frames over the client library's
//! [`Connection`].
//!
//! [`conclave_client::Client`] keeps one request in flight and waits for its
//! answer. A load generator must not: a sender that waited for each `sent` would
//! slow down exactly when the server does, and hide the server's latency from the
//! measurement (coordinated omission). A `Peer` therefore writes requests without
//! waiting ([`Peer::post`]) and reads frames as they come ([`Peer::frame`]),
//! matching answers by id itself; [`Peer::call`] is the simple request/response
//! used while setting up.

use crate::{population::CLIENT_NAME, server::Target};
use anyhow::{Context, Result, anyhow, bail};
use conclave_client::{Connection, FrameText, SessionToken};
use conclave_proto::{
    ClientFrame, ErrorBody, Event, Outcome, PROTOCOL_VERSION, Reply, Request, Response, ServerFrame,
    WelcomeInfo,
};
use std::time::Duration;
use tokio::time::timeout;

/// Longest wait for one answer during setup. Commits of large groups are big.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A greeted, authenticated connection.
#[derive(Debug)]
pub struct Peer {
    /// The socket.
    conn: Connection,
    /// Id of the next request; never 0 (reserved by the protocol).
    next_id: u64,
    /// Welcomes that arrived while waiting for answers during setup.
    pub welcomes: Vec<WelcomeInfo>,
}

impl Peer {
    /// Connects over TLS, says `hello` and `authenticate`s with `token`.
    ///
    /// # Errors
    /// Connection failures and refusals.
    pub async fn connect(target: &Target, token: &SessionToken) -> Result<Self> {
        let conn = Connection::connect(&target.address, &target.trust).await?;
        let mut peer = Self { conn, next_id: 1, welcomes: Vec::new() };
        peer.call(Request::Hello { versions: vec![PROTOCOL_VERSION], client: CLIENT_NAME.to_owned() })
            .await?;
        peer.call(Request::Authenticate { token: token.expose().to_owned() }).await?;
        Ok(peer)
    }

    /// Sends `request` and waits for its answer. Welcome events that arrive
    /// meanwhile are kept in [`Peer::welcomes`]; room entries are dropped (setup
    /// catches up with `fetch` where it needs them, and measurement only counts
    /// entries after setup), and so are late answers to earlier
    /// [`post`](Self::post)s.
    ///
    /// # Errors
    /// An error answer, a timeout, a socket failure.
    pub async fn call(&mut self, request: Request) -> Result<Reply> {
        let name = request.name();
        let id = self.post(request).await?;
        let wait = async {
            loop {
                match self.frame().await? {
                    ServerFrame::Response(Response { id: got, outcome }) if got == id => {
                        return match outcome {
                            Outcome::Ok(reply) => Ok(reply),
                            Outcome::Error(ErrorBody { code, message }) => {
                                Err(anyhow!("`{name}` refused: {code:?}: {message}"))
                            }
                        };
                    }
                    // The late answer to a request posted without waiting: a
                    // run that ended before every answer came (an overloaded
                    // sweep step) leaves them behind. Not this call's.
                    ServerFrame::Response(Response { id: got, .. }) if got < id => {}
                    ServerFrame::Response(Response { id: got, .. }) => {
                        bail!("answer to request {got}, never sent, while waiting for {id}")
                    }
                    ServerFrame::Event { event: Event::Welcome { welcome } } => self.welcomes.push(welcome),
                    ServerFrame::Event { .. } => {}
                }
            }
        };
        timeout(CALL_TIMEOUT, wait).await.with_context(|| format!("no answer to `{name}`"))?
    }

    /// Writes `request` without waiting for the answer; returns its id.
    ///
    /// # Errors
    /// Socket failures. Not cancel-safe (see [`Connection::send`]).
    pub async fn post(&mut self, request: Request) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.conn.send(&ClientFrame { id, request }).await?;
        Ok(id)
    }

    /// The next frame from the server. Cancel-safe, so it can sit in `select!`.
    ///
    /// # Errors
    /// Socket failures and invalid frames.
    pub async fn frame(&mut self) -> Result<ServerFrame> {
        Ok(self.conn.next_frame().await?)
    }

    /// The next frame as undecoded text (see [`crate::probe`]). Cancel-safe.
    ///
    /// # Errors
    /// Socket failures.
    pub async fn text(&mut self) -> Result<FrameText> {
        Ok(self.conn.next_text().await?)
    }

    /// Reads and drops frames until none has come for `quiet` (keeping
    /// Welcomes), so that a measurement does not start with a backlog: after a
    /// large group's setup, members still have the commits of later batches to
    /// read, hundreds of kilobytes each.
    ///
    /// # Errors
    /// Socket failures.
    pub async fn drain(&mut self, quiet: Duration) -> Result<()> {
        loop {
            match timeout(quiet, self.frame()).await {
                Ok(Ok(ServerFrame::Event { event: Event::Welcome { welcome } })) => {
                    self.welcomes.push(welcome)
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        self.conn.close().await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;
    use crate::{
        population,
        server::{ServerArgs, Target},
    };
    use conclave_proto::{Reply, Request};
    use conclave_server::{Config, RawConfig, Server};

    /// A call made while the answer to an earlier post is still to come (what a
    /// sweep step that gave up waiting leaves behind) gets its own answer: the
    /// late one, which the server writes first, is skipped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_skips_the_late_answer_to_an_earlier_post() {
        let dir = tempfile::tempdir().expect("temp dir");
        let flags = RawConfig { data_dir: Some(dir.path().join("data")), ..RawConfig::default() };
        let config = Config::resolve(RawConfig::default(), flags).expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Server::start(config).await.expect("server start");
        let args = ServerArgs {
            server: Some(listener.local_addr().expect("address").to_string()),
            fingerprint: Some(server.fingerprint().to_owned()),
            server_pid: None,
            metrics: None,
            conclave_bin: None,
            serve_args: Vec::new(),
            server_log: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(listener, metrics, async move {
            stopped.await.ok();
        }));

        let target = Target::open(&args).await.expect("target");
        let user = population::register(&target, "late", 1).await.expect("register").users.remove(0);
        let mut peer = Peer::connect(&target, &user.token).await.expect("connect");
        peer.post(Request::Ping {}).await.expect("post");
        let reply = peer.call(Request::Whoami {}).await.expect("the call's own answer");
        assert!(
            matches!(&reply, Reply::Authenticated { user: info, .. } if info.username == user.name),
            "{reply:?}"
        );
        // The connection is still in step: the next call gets its own answer too.
        assert!(matches!(peer.call(Request::Ping {}).await.expect("ping"), Reply::Pong));

        peer.close().await;
        stop.send(()).ok();
        serving.await.expect("server task").expect("server run");
    }
}
