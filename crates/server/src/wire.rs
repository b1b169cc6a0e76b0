//! [`Wire`]: one client's TLS socket after the WebSocket upgrade, shared by the
//! connection's session (which reads requests and writes answers) and the
//! fan-out (which writes pushed frames straight into it).
//!
//! ```text
//!  fan-out ──push(frame)──┐                     ┌── session: answers, close
//!                         ▼                     ▼
//!          lock ─▶ rustls encrypts one record ─▶ send ─▶ socket
//!                                  │ would block
//!                                  ▼
//!               pending bytes (bounded) ─▶ session woken, writes them when
//!                                          the socket drains
//! ```
//!
//! **Why shared.** In a large room each message goes to every member. Waking
//! every member's task to write one frame (a queue, a wake-up, a poll of the
//! task, the WebSocket and TLS layers) cost more than the write itself. Here a
//! frame is framed once as WebSocket bytes for everybody ([`Frame`]), and each
//! push encrypts it for one connection and writes it with a non-blocking send
//! on the publishing thread. Only a socket that would block leaves bytes
//! pending, and only then is its session woken.
//!
//! **Slow consumers.** Pending bytes are bounded ([`PENDING_LIMIT`]). A push
//! that would go past the bound is dropped for this connection alone and the
//! connection is marked lagged; while marked, further pushes are dropped as
//! well. Once its session has written everything pending, it writes one
//! `resync` event in their place, and the client fetches every room from its
//! last processed sequence number (and asks for `welcomes` and `users`).
//! Nothing is skipped silently, and a slow reader never slows another.
//!
//! **Locking.** The state sits behind a `std` mutex held for one encryption and
//! one non-blocking system call, never across an `.await`. The session reads
//! under the same lock, one TLS read at a time.

use futures_util::task::AtomicWaker;
use rustls::ServerConnection;
use socket2::SockRef;
use std::{
    future::poll_fn,
    io::{self, Read, Write},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::Poll,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{
    Bytes,
    protocol::frame::{
        Frame as WsFrame,
        coding::{Data, OpCode},
    },
};

/// A server frame framed as one WebSocket text message, ready to encrypt.
/// Cloning shares the buffer, so a frame for a thousand connections is encoded
/// and framed once.
pub(crate) type Frame = Bytes;

/// Pending bytes a connection may hold before pushes to it are dropped (and it
/// is told to resync). A single frame is always accepted when nothing is
/// pending, however large.
pub(crate) const PENDING_LIMIT: usize = 512 * 1024;

/// Capacity the pending buffer keeps once it has drained: an idle connection
/// holds no large buffer after a burst.
const KEEP_CAPACITY: usize = 4 * 1024;

/// Frames `text` (one encoded server frame) as an unmasked WebSocket text
/// message.
pub(crate) fn frame_text(text: String) -> Frame {
    let frame = WsFrame::message(text.into_bytes(), OpCode::Data(Data::Text), true);
    let mut bytes = Vec::with_capacity(frame.len());
    frame.format(&mut bytes).expect("writing into a Vec cannot fail");
    Bytes::from(bytes)
}

/// One client's socket and TLS session. See the module documentation.
#[derive(Debug)]
pub(crate) struct Wire {
    socket: TcpStream,
    state: Mutex<State>,
    /// The session, woken when it has writing to do: bytes left pending, a
    /// `resync` owed, or a broken socket to notice.
    session: AtomicWaker,
}

#[derive(Debug)]
struct State {
    tls: ServerConnection,
    /// Encrypted bytes the socket would not take yet, in order.
    pending: Vec<u8>,
    /// Pushes were dropped: the client is owed a `resync`.
    lagged: bool,
    /// The socket failed: nothing more is written.
    broken: bool,
    /// The session closed the connection: what is pending still goes out,
    /// nothing more is added.
    closed: bool,
}

/// How a write left the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Everything went out.
    Flushed,
    /// Some bytes wait for the socket to drain.
    Pending,
    /// The socket failed; the connection is over.
    Broken,
}

impl Written {
    /// An error if the socket failed; the bytes are out or pending otherwise.
    fn checked(self) -> io::Result<()> {
        if self == Self::Broken { Err(broken()) } else { Ok(()) }
    }
}

/// What a push did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Written or pending behind earlier bytes, in order.
    Sent,
    /// Dropped: the connection is lagging (it will be told to resync) or gone.
    Dropped,
}

impl Wire {
    /// Takes over a socket whose TLS handshake and WebSocket upgrade are done,
    /// writing anything TLS still has to send.
    pub(crate) fn new(socket: TcpStream, mut tls: ServerConnection) -> Arc<Self> {
        // Every record is moved out to `pending` as soon as it is made, and that
        // is bounded here; rustls's own limit (64 KiB) would refuse a large frame.
        tls.set_buffer_limit(None);
        let wire = Arc::new(Self {
            socket,
            state: Mutex::new(State {
                tls,
                pending: Vec::new(),
                lagged: false,
                broken: false,
                closed: false,
            }),
            session: AtomicWaker::new(),
        });
        let mut state = wire.lock();
        state.seal();
        state.flush(&wire.socket);
        drop(state);
        wire
    }

    /// Writes `frames` in order with one system call, unless the connection is
    /// lagging or gone; never waits. Dropped frames are dropped together.
    pub(crate) fn push(&self, frames: &[Frame]) -> Pushed {
        let mut state = self.lock();
        if state.broken || state.closed || state.lagged {
            return Pushed::Dropped;
        }
        let size: usize = frames.iter().map(Bytes::len).sum();
        if !state.pending.is_empty() && state.pending.len() + size > PENDING_LIMIT {
            state.lagged = true;
            drop(state);
            self.session.wake();
            return Pushed::Dropped;
        }
        let written = state.send(&self.socket, frames.iter().map(|f| &f[..]));
        drop(state);
        if self.tell_session(written) == Written::Broken { Pushed::Dropped } else { Pushed::Sent }
    }

    /// Wakes the session if a write it did not make left it work (bytes
    /// pending, or a broken socket to notice); returns `written`.
    fn tell_session(&self, written: Written) -> Written {
        if written != Written::Flushed {
            self.session.wake();
        }
        written
    }

    /// Writes an answer of the session's own. It is never dropped; if the
    /// socket would block, this waits until everything pending has gone out,
    /// so a client that does not read cannot make the server buffer answers.
    ///
    /// # Errors
    /// If the socket is broken or closed.
    pub(crate) async fn send(&self, frame: &[u8]) -> io::Result<()> {
        let written = self.lock().send(&self.socket, std::iter::once(frame));
        self.finish(written).await
    }

    /// Writes `frame` (a close frame), then TLS's close notification, and marks
    /// the connection closed so no push follows them; waits until they are out.
    ///
    /// # Errors
    /// If the socket is broken.
    pub(crate) async fn close(&self, frame: &[u8]) -> io::Result<()> {
        let written = {
            let mut state = self.lock();
            let written = state.send(&self.socket, std::iter::once(frame));
            state.tls.send_close_notify();
            state.seal();
            state.closed = true;
            if written == Written::Broken { written } else { state.flush(&self.socket) }
        };
        self.finish(written).await
    }

    /// After a write of the session's own: waits until it is all out.
    async fn finish(&self, written: Written) -> io::Result<()> {
        match written {
            Written::Flushed => Ok(()),
            Written::Pending => self.drain().await,
            Written::Broken => Err(broken()),
        }
    }

    /// Waits until the session has writing to do ([`catch_up`](Self::catch_up)
    /// would make progress). Cancel-safe: takes nothing.
    pub(crate) async fn has_work(&self) {
        poll_fn(|cx| {
            // Registered before looking, so a push that leaves work after the
            // look wakes this waker.
            self.session.register(cx.waker());
            if self.lock().has_work() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
        if !self.lock().pending.is_empty() {
            // Readiness is cleared by the write that would block, so this waits
            // for the socket to drain. An error shows in the write that follows.
            self.socket.writable().await.ok();
        }
    }

    /// Writes what is pending as far as the socket takes it without waiting;
    /// once nothing is pending, writes the `resync` owed after dropped pushes.
    ///
    /// # Errors
    /// If the socket is broken or closed.
    pub(crate) fn catch_up(&self, resync: &Frame) -> io::Result<()> {
        let mut state = self.lock();
        let mut written = state.flush(&self.socket);
        if written == Written::Flushed && state.lagged {
            state.lagged = false;
            written = state.send(&self.socket, std::iter::once(&resync[..]));
        }
        written.checked()
    }

    /// Waits until the socket can be read. Cancel-safe, and the wake-up
    /// outlives the future: the socket keeps the waker of the last poll (where
    /// `TcpStream::readable` would forget it when dropped), which the session's
    /// gate relies on when it drops a pending read to write or time out.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.socket.poll_read_ready(cx)).await
    }

    /// Reads decrypted bytes into `buf`: what TLS already holds, else what the
    /// socket has now. `Ok(0)` when the client closed TLS cleanly; `WouldBlock`
    /// when there is nothing yet.
    fn read_plain(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        loop {
            match state.tls.reader().read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            match state.tls.read_tls(&mut SocketReader(&self.socket)) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(err) => return Err(err),
            }
            if let Err(err) = state.tls.process_new_packets() {
                // Send the alert TLS has for the peer, then give up.
                state.seal();
                state.flush(&self.socket);
                state.broken = true;
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
            if state.tls.wants_write() {
                // A key update's answer, say: out now, or with the pending bytes.
                state.seal();
                self.tell_session(state.flush(&self.socket));
            }
        }
    }

    /// Waits until nothing is pending.
    async fn drain(&self) -> io::Result<()> {
        loop {
            let written = self.lock().flush(&self.socket);
            match written {
                Written::Flushed => return Ok(()),
                Written::Broken => return Err(broken()),
                Written::Pending => self.socket.writable().await?,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent or marks the
        // connection broken, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Whether the session has writing to do.
    fn has_work(&self) -> bool {
        !self.pending.is_empty() || self.lagged || self.broken
    }

    /// Encrypts `chunks` (whole WebSocket frames) and writes them after
    /// anything pending.
    fn send<'a>(&mut self, socket: &TcpStream, chunks: impl Iterator<Item = &'a [u8]>) -> Written {
        if self.broken || self.closed {
            return Written::Broken;
        }
        for chunk in chunks {
            if self.tls.writer().write_all(chunk).is_err() {
                self.broken = true;
                return Written::Broken;
            }
        }
        self.seal();
        self.flush(socket)
    }

    /// Moves every encrypted record TLS holds to the end of `pending`.
    fn seal(&mut self) {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.pending).is_err() {
                break;
            }
        }
    }

    /// Writes `pending` as far as the socket takes it without waiting.
    fn flush(&mut self, socket: &TcpStream) -> Written {
        if self.broken {
            return Written::Broken;
        }
        let mut sent = 0;
        let written = loop {
            if sent == self.pending.len() {
                break Written::Flushed;
            }
            match send_now(socket, &self.pending[sent..]) {
                Ok(0) => break Written::Broken,
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break Written::Pending,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Written::Broken,
            }
        };
        match written {
            Written::Flushed => {
                self.pending.clear();
                if self.pending.capacity() > KEEP_CAPACITY {
                    self.pending = Vec::new();
                }
            }
            Written::Pending => {
                self.pending.drain(..sent);
            }
            Written::Broken => {
                self.broken = true;
                self.pending = Vec::new();
            }
        }
        written
    }
}

/// One non-blocking `send` of `bytes`, made on the socket directly: tokio's
/// `try_write` first checks the readiness it keeps for the socket, one more
/// cache miss per connection per delivery in a large room's fan-out. Only a
/// send that would block goes on to `try_write`, which then clears that
/// readiness, so a session that waits for the socket to drain does wait.
fn send_now(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match SockRef::from(socket).send(bytes) {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => socket.try_write(bytes),
        done => done,
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed")
}

/// `Read` over a non-blocking socket, for rustls.
struct SocketReader<'a>(&'a TcpStream);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// The byte stream tungstenite's WebSocket reads frames from and writes its
/// own control frames (pongs, close replies) to: decrypted reads from the
/// wire, and writes as the session's answers.
pub(crate) struct Plain<'a>(pub &'a Wire);

impl Read for Plain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_plain(buf)
    }
}

impl Write for Plain<'_> {
    /// Takes every byte (whole frames, as tungstenite writes them), so frames
    /// from other writers cannot land inside them. Left pending if the socket
    /// would block; the session writes them out from there.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wire = self.0;
        let written = wire.lock().send(&wire.socket, std::iter::once(buf));
        wire.tell_session(written).checked().map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
