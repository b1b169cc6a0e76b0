//! Group commit for messages: one task stores every `send` of this node.
//!
//! ```text
//!  session ─┐                        ┌─ one transaction, one fsync ─┐
//!  session ─┼─▶ bounded queue ─▶ task: take all queued (≤ MAX_BATCH) ─▶ publish ─▶ reply each
//!  session ─┘                        └─ messages + their audit entries ┘   (in seq order)
//! ```
//!
//! A durable store costs one fsync per transaction, so storing each message in
//! its own transaction caps a node at a few hundred messages per second however
//! fast the rest is. Here, while one batch is being written, the next one
//! gathers in the queue; under load a batch holds many messages, at rest it
//! holds one and adds no delay. A sender is answered only after its batch has
//! committed, so every acknowledged message is on disk.
//!
//! **Spacing.** A batch costs a fixed part (a dozen statements, each a hop to
//! the database's thread and back, and the commit) besides its messages, so a
//! batch starts at least `GATHER` (3 ms) after the one before it started. At
//! rest and at moderate rates batches are further apart than that and nothing
//! waits; under a busy load each batch holds more messages, for a few
//! milliseconds of latency (workload D, 4,000 messages a second: about 100 µs
//! of server CPU per delivery without the spacing, 75–78 µs with it, and a
//! median latency 2.5 ms longer).
//!
//! **Order.** The task holds the turns of every room in the batch (in stripe
//! order, so it cannot deadlock with a handler holding one) from before the
//! transaction until the entries are published: entries reach connections in
//! sequence order, as with commits and deletions. Consecutive entries of one
//! room are published together, so a busy room costs each member one write
//! per batch rather than one per message.
//!
//! **Failure.** A refused message (policy, unknown room, reused nonce) is
//! answered on its own; a storage error fails the batch and every sender in it
//! gets `unavailable` (nothing was stored; resending with the same nonce is
//! safe). A nonce raced in from another connection fails the batch with a
//! conflict; its messages are then stored one by one.
//!
//! **Lifetime.** The task ends when the server, its sessions gone, calls
//! [`Appender::finish`] (or every handle is gone), after storing what was
//! queued; then it gives its database connection back.

use crate::{
    audit::ChainKey,
    fanout::{self, Delta, Fanout},
    metrics::Metrics,
    policy,
    shutdown::{self, Shutdown},
    store::{AppendError, NewMessage, Store, StoreError, StoredMessage, Writer},
};
use conclave_proto::{Bytes, DeviceId, EntryBody, Event, LogEntry, RoomId, UserId};
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

/// Most messages in one transaction: bounds the transaction's length (and so
/// the wait of the first sender in it).
const MAX_BATCH: usize = 256;
/// Least time between the starts of two batches: under load, what arrives
/// meanwhile shares the next batch's fixed cost (see the module documentation).
const GATHER: Duration = Duration::from_millis(3);
/// Sends waiting to be stored; senders wait for room when it is full.
const QUEUE: usize = 4096;

/// A message to store and publish.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub room: RoomId,
    pub user: UserId,
    pub username: String,
    pub device: DeviceId,
    pub ciphertext: Bytes,
    pub nonce: u64,
    pub at_ms: i64,
}

struct Job {
    message: Outgoing,
    reply: oneshot::Sender<Result<StoredMessage, AppendError>>,
}

/// Handle to the appender task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    jobs: mpsc::Sender<Job>,
    /// Tells the task to store what is queued and end ([`Appender::finish`]).
    stop: Arc<shutdown::Trigger>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("room", &self.message.room).finish_non_exhaustive()
    }
}

impl Appender {
    /// Starts the task; `key` links the messages' audit entries.
    pub(crate) fn start(store: Store, fanout: Fanout, metrics: Arc<Metrics>, key: ChainKey) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let (stop, stopping) = shutdown::channel();
        tokio::spawn(run(rx, stopping, store, fanout, metrics, key));
        Self { jobs, stop: Arc::new(stop) }
    }

    /// Stores what is queued, then ends the task and gives its database
    /// connection back, so that the pool can close. Later sends fail with
    /// [`AppendError::Unstored`]. For the server's shutdown, once its sessions
    /// are gone.
    pub(crate) async fn finish(&self) {
        self.stop.fire();
        self.jobs.closed().await;
    }

    /// Stores `message` (in the next batch), publishes it to the room, and
    /// returns where it landed once it is on disk.
    ///
    /// # Errors
    /// As [`Writer::append_messages`]; [`AppendError::Unstored`] if the batch
    /// failed or the server is stopping.
    pub(crate) async fn append(&self, message: Outgoing) -> Result<StoredMessage, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { message, reply }).await.map_err(|_| AppendError::Unstored)?;
        answer.await.unwrap_or(Err(AppendError::Unstored))
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    mut stopping: Shutdown,
    store: Store,
    fanout: Fanout,
    metrics: Arc<Metrics>,
    key: ChainKey,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The task's own connection (see `Writer`), taken when first needed and
    // after any failed batch, so a broken connection is never kept.
    let mut writer: Option<Writer> = None;
    let mut open = true;
    let mut last_start: Option<Instant> = None;
    loop {
        // Under load, the next batch begins `GATHER` after the last one began.
        let gather_until = last_start.map(|start| start + GATHER).filter(|at| *at > Instant::now());
        let taken = tokio::select! {
            taken = async {
                if let Some(at) = gather_until {
                    tokio::time::sleep_until(at).await;
                }
                rx.recv_many(&mut batch, MAX_BATCH).await
            } => taken,
            () = stopping.recv(), if open => {
                // No more sends; what is queued is still stored, then
                // `recv_many` returns 0.
                rx.close();
                open = false;
                continue;
            }
        };
        if taken == 0 {
            break;
        }
        let jobs = std::mem::take(&mut batch);
        last_start = Some(Instant::now());
        metrics.message_batches.inc();
        let outcomes = match store_batch(&store, &mut writer, &fanout, &metrics, &key, &jobs).await {
            Err(StoreError::Conflict) if jobs.len() > 1 => {
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    let one =
                        store_batch(&store, &mut writer, &fanout, &metrics, &key, std::slice::from_ref(job))
                            .await;
                    outcomes.push(one.map(|mut o| o.remove(0)).unwrap_or_else(|err| failed(&err)));
                }
                outcomes
            }
            Err(err) => jobs.iter().map(|_| failed(&err)).collect(),
            Ok(outcomes) => outcomes,
        };
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            if outcome.as_ref().is_ok_and(|stored| stored.fresh) {
                metrics.messages.inc();
            }
            // The sender may have gone; the message is stored all the same.
            job.reply.send(outcome).ok();
        }
    }
}

/// [`store_and_publish`] on the task's connection, taking one if it has none
/// and letting it go if the batch fails (other than by a raced nonce, which
/// says nothing about the connection).
async fn store_batch(
    store: &Store,
    writer: &mut Option<Writer>,
    fanout: &Fanout,
    metrics: &Metrics,
    key: &ChainKey,
    jobs: &[Job],
) -> Result<Vec<Result<StoredMessage, AppendError>>, StoreError> {
    let conn = match writer {
        Some(conn) => conn,
        None => writer.insert(store.writer().await?),
    };
    let outcome = store_and_publish(conn, fanout, metrics, key, jobs).await;
    if outcome.as_ref().is_err_and(|err| !matches!(err, StoreError::Conflict)) {
        *writer = None;
    }
    outcome
}

fn failed(err: &StoreError) -> Result<StoredMessage, AppendError> {
    tracing::warn!(error = %err, "a batch of messages could not be stored");
    Err(AppendError::Unstored)
}

/// Stores the batch and publishes its fresh entries, holding the rooms' turns.
async fn store_and_publish(
    writer: &mut Writer,
    fanout: &Fanout,
    metrics: &Metrics,
    key: &ChainKey,
    jobs: &[Job],
) -> Result<Vec<Result<StoredMessage, AppendError>>, StoreError> {
    let _turns = fanout.turns(jobs.iter().map(|job| job.message.room)).await;
    let messages: Vec<NewMessage<'_>> = jobs
        .iter()
        .map(|job| {
            let m = &job.message;
            NewMessage {
                room: m.room,
                user: m.user,
                username: &m.username,
                device: m.device,
                ciphertext: &m.ciphertext.0,
                nonce: m.nonce,
                at_ms: m.at_ms,
            }
        })
        .collect();
    let started = Instant::now();
    let stored = writer
        .append_messages(
            &messages,
            policy::may_use,
            |message, stored| {
                let detail = serde_json::json!({
                    "room": message.room.0, "id": stored.id.0, "seq": stored.seq.0, "size": message.ciphertext.len()
                });
                (message.username.to_owned(), detail.to_string())
            },
            |prev, seq, entry| key.link(prev, seq, entry),
        )
        .await;
    metrics.message_batch_seconds.observe(started.elapsed().as_secs_f64());
    let outcomes = stored?;
    // Consecutive entries of one room go out together: one write per member
    // for all of them.
    let mut run: Option<(RoomId, Vec<fanout::Frame>)> = None;
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        let Ok(stored) = outcome else { continue };
        if !stored.fresh {
            continue;
        }
        let m = &job.message;
        let entry = LogEntry {
            seq: stored.seq,
            at_ms: stored.at_ms,
            sender: m.username.clone(),
            device: m.device,
            body: EntryBody::Message { id: stored.id, ciphertext: Some(m.ciphertext.clone()) },
        };
        let frame = fanout::encode(Event::Entry { room: m.room, entry });
        match &mut run {
            Some((room, frames)) if *room == m.room => frames.push(frame),
            _ => {
                if let Some((room, frames)) = run.replace((m.room, vec![frame])) {
                    fanout.publish_all(room, &frames, Delta::default());
                }
            }
        }
    }
    if let Some((room, frames)) = run {
        fanout.publish_all(room, &frames, Delta::default());
    }
    Ok(outcomes)
}
