//! The measured phase of the messaging scenarios: senders offer messages at a
//! fixed rate, every member receives, and afterwards the logs are checked and
//! turned into figures.
//!
//! * **Open loop.** Each sender writes a `send` at every tick of its own
//!   interval without waiting for the previous answer, so a slow server does not
//!   lower the offered rate and its slowness shows in the latencies. Ticks use
//!   [`MissedTickBehavior::Burst`]: if the bench itself falls behind, missed
//!   ticks are sent at once, keeping the offered total; latency is counted from
//!   the actual send call. Senders start spread over one period.
//! * **Ciphertexts are made before the window.** Every message is a real MLS
//!   PrivateMessage from the sender's group state, encrypted before timing starts
//!   so that the bench's CPU during the window goes to the network.
//! * **Correlation by sequence number.** Receivers record `(seq, arrival)` for
//!   every entry; a sender learns the seq of its message from the `sent` answer.
//!   Latencies are joined after the run, so a receiver never waits for a
//!   sender's answer (which may arrive after the entry). Times are offsets from
//!   one [`Instant`] in this process, so clocks never disagree.
//! * **Loss check.** Every receiver must see every entry after setup up to the
//!   last acknowledged seq exactly once, in order, within the drain deadline.
//! * **Content check.** Members that verify decrypt one message in `sample` of
//!   every sender, and each sender's last one, and check sender and content
//!   (`--decrypt-all`: every message). Skipping is safe: the sender ratchet lets a
//!   receiver jump up to 1,000 generations ahead.

use crate::{
    commits::Commits,
    group::{Member, Room},
    probe,
    server::{ProcessSample, Target},
    stats::{Latency, LatencySummary, Usage, per_sec},
};
use anyhow::{Result, bail};
use conclave_client::{decode_server_frame, mls::Processed};
use conclave_proto::{Bytes, EntryBody, Event, Outcome, Reply, Request, Response, ServerFrame};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    sync::watch,
    time::{MissedTickBehavior, interval_at, sleep_until},
};

/// Bytes of the content header in every message: `SSSSSSSS:CCCCCCCCCC:` (sender
/// index, per-sender counter).
pub const HEADER_BYTES: usize = 20;

/// The largest `sample`: the sender ratchet's forward distance (1,000) must not
/// be exceeded between two decrypted messages of one sender.
pub const MAX_SAMPLE: u32 = 500;

/// Before a run, each member reads until nothing has come for this long.
const QUIET: Duration = Duration::from_millis(500);

/// Quiet periods [`settle`] waits at most for the rooms' newest entries to stay
/// put (at least a minute).
const SETTLE_ROUNDS: usize = 120;

/// What one run offers.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Length of the sending window.
    pub duration: Duration,
    /// Messages per second offered by each sender.
    pub rate: f64,
    /// Plaintext bytes per message (at least [`HEADER_BYTES`]).
    pub size: usize,
    /// Verifying members decrypt one message in this many per sender.
    pub sample: u32,
    /// How long after the window receivers may take to get everything.
    pub deliver_within: Duration,
}

impl Plan {
    /// Messages each sender sends.
    #[must_use]
    pub fn per_sender(&self) -> usize {
        // Rates and durations are small positive numbers; the product fits.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (self.rate * self.duration.as_secs_f64()).round() as usize;
        n.max(1)
    }
}

/// How much a member decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing: it only counts entries.
    No,
    /// One in `sample` per sender, and the last.
    Sample,
    /// Every message.
    All,
}

/// A member with its part in the run.
#[derive(Debug)]
pub struct Participant {
    /// The member.
    pub member: Member,
    /// Index of its room in the run's room list.
    pub room: usize,
    /// Its index among all senders, if it sends.
    pub sender: Option<usize>,
    /// What it decrypts (needs the member's MLS state).
    pub verify: Verify,
}

/// A room's progress, shared by its members' tasks.
#[derive(Debug)]
struct Progress {
    /// Senders of the room still waiting for answers.
    senders_left: AtomicUsize,
    /// Highest acknowledged seq so far.
    max_seq: AtomicI64,
    /// The room's last seq, once every sender has its answers.
    last: watch::Sender<Option<i64>>,
}

impl Progress {
    fn sender_done(&self, max_seq: i64) {
        self.max_seq.fetch_max(max_seq, Ordering::SeqCst);
        if self.senders_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.last.send_replace(Some(self.max_seq.load(Ordering::SeqCst)));
        }
    }
}

/// Shared, read-only context of the tasks.
#[derive(Debug)]
struct Shared {
    rooms: Vec<Room>,
    progress: Vec<Progress>,
    /// Sender index → username, to check decrypted content.
    sender_names: Vec<String>,
    plan: Plan,
    /// Time zero of the run.
    t0: Instant,
}

/// What one member's task recorded.
#[derive(Debug, Default)]
struct Log {
    /// `(seq − setup seq, µs since t0)` of every entry after setup.
    arrivals: Vec<(u32, u32)>,
    /// `(seq − setup seq, µs since t0 at the send call)` of every acknowledged send.
    sends: Vec<(u32, u32)>,
    offered: u64,
    acked: u64,
    errors: BTreeMap<String, u64>,
    resyncs: u64,
    decrypted: u64,
    decrypt_failures: u64,
    content_errors: u64,
    /// Socket failure that ended the task early.
    failure: Option<String>,
}

impl Log {
    /// Records the arrival of entry `seq` at `now_us` if it came after setup
    /// (seq above `base`); returns whether it did.
    fn arrive(&mut self, seq: i64, base: i64, now_us: u32, seen_last: &mut i64) -> bool {
        if seq <= base {
            return false;
        }
        self.arrivals.push((u32::try_from(seq - base).unwrap_or(u32::MAX), now_us));
        *seen_last = (*seen_last).max(seq);
        true
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunResult {
    /// Senders.
    pub senders: usize,
    /// Receivers (every member, the senders included: their own messages come back).
    pub receivers: usize,
    /// Messages per second offered by each sender.
    pub rate_per_sender: f64,
    /// Plaintext bytes per message.
    pub size: usize,
    /// Sending window, s.
    pub duration_s: f64,
    /// Messages offered (send calls).
    pub offered: u64,
    /// Messages offered per second over the window.
    pub offered_msgs_per_s: f64,
    /// Messages acknowledged with `sent`.
    pub acked: u64,
    /// Entries received, over all receivers (fan-out deliveries).
    pub deliveries: u64,
    /// Deliveries the loss check expected.
    pub expected_deliveries: u64,
    /// Deliveries per second, from the first send to the last arrival.
    pub delivered_per_s: f64,
    /// From the first send to the last arrival, s.
    pub span_s: f64,
    /// Send call to arrival at each receiver, every delivery.
    pub latency: LatencySummary,
    /// Error answers by code.
    pub errors: BTreeMap<String, u64>,
    /// Members whose connection failed.
    pub connection_failures: u64,
    /// `resync` events (the server dropped events for a slow connection).
    pub resyncs: u64,
    /// The loss check.
    pub loss: Loss,
    /// Decryptions and what they found.
    pub content: Content,
    /// Time spent encrypting the messages before the window, s.
    pub encrypt_s: f64,
    /// Server resources over the window (start to last receiver done).
    pub server: Option<Usage>,
    /// Server CPU per delivery, µs.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The server's commits of messages in the window, from its `/metrics`:
    /// every delivery waited for one, so a slow disk shows here.
    pub server_commits: Option<Commits>,
    /// The bench's own resources over the window.
    pub bench: Usage,
}

/// Whether every receiver got every entry exactly once, in the room's order.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Loss {
    /// Entries never received (within the deadline), over all receivers.
    pub missing: u64,
    /// Entries received twice or out of order.
    pub duplicated_or_reordered: u64,
    /// Receivers that got everything.
    pub complete_receivers: u64,
    /// No loss, duplicate or reordering anywhere.
    pub exactly_once_in_order: bool,
}

/// What decrypting showed.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Content {
    /// Messages decrypted and checked.
    pub decrypted: u64,
    /// Messages that did not decrypt.
    pub decrypt_failures: u64,
    /// Decrypted messages whose sender or content was wrong.
    pub content_errors: u64,
}

/// The content of message `counter` of sender `sender`, `size` bytes.
#[must_use]
pub fn payload(sender: usize, counter: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!("{sender:08}:{counter:010}:").into_bytes();
    bytes.resize(size.max(HEADER_BYTES), b'.');
    bytes
}

/// Reads `(sender, counter)` back from a payload.
fn parse_payload(bytes: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(bytes.get(..HEADER_BYTES)?).ok()?;
    let mut parts = text.split(':');
    let sender = parts.next()?.parse().ok()?;
    let counter = parts.next()?.parse().ok()?;
    bytes[HEADER_BYTES..].iter().all(|&b| b == b'.').then_some((sender, counter))
}

/// Runs `plan` over `participants` in `rooms` and checks the result. The
/// participants come back for another run (a sweep reuses its room).
///
/// # Errors
/// Encryption failures before the window, or a task that panicked.
pub async fn run(
    target: &Target,
    rooms: &[Room],
    mut participants: Vec<Participant>,
    plan: Plan,
) -> Result<(Vec<Participant>, RunResult)> {
    if plan.size < HEADER_BYTES {
        bail!("--size must be at least {HEADER_BYTES} bytes");
    }
    let per_sender = plan.per_sender();
    let encrypt_started = Instant::now();
    let mut outboxes = encrypt_all(&mut participants, rooms, per_sender, plan.size).await?;
    let encrypt_s = encrypt_started.elapsed().as_secs_f64();

    // Entries after setup, and the room's current newest entry (a sweep's
    // earlier steps moved it on).
    let mut rooms = rooms.to_vec();
    let mut sender_names = Vec::new();
    let mut senders_per_room = vec![0usize; rooms.len()];
    for p in &participants {
        if let Some(i) = p.sender {
            if sender_names.len() <= i {
                sender_names.resize(i + 1, String::new());
            }
            sender_names[i].clone_from(&p.member.name);
            senders_per_room[p.room] += 1;
        }
    }
    // Nothing left over from setup or an earlier run may be read in the window.
    let settled = settle(&mut participants, &rooms).await?;
    for (room, seq) in rooms.iter_mut().zip(settled) {
        room.setup_seq = seq;
    }
    let progress = senders_per_room
        .iter()
        .map(|&n| Progress {
            senders_left: AtomicUsize::new(n),
            max_seq: AtomicI64::new(0),
            last: watch::channel(if n == 0 { Some(0) } else { None }).0,
        })
        .collect();
    let t0 = Instant::now() + Duration::from_millis(200);
    let shared = Arc::new(Shared { rooms, progress, sender_names, plan, t0 });

    let before = target.reading().await;
    let bench_before = ProcessSample::own();
    let mut tasks = Vec::with_capacity(participants.len());
    for p in participants {
        let outbox = p.sender.and_then(|i| outboxes.get_mut(i)).map(std::mem::take).unwrap_or_default();
        tasks.push(tokio::spawn(drive(p, outbox, Arc::clone(&shared))));
    }
    let mut participants = Vec::with_capacity(tasks.len());
    let mut logs = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (p, log) = task.await?;
        participants.push(p);
        logs.push(log);
    }
    let after = target.reading().await;
    let bench = Usage::between(bench_before, ProcessSample::own());
    let server = Usage::maybe(before.process, after.process);
    let commits = before.commits.zip(after.commits).map(|(before, after)| after.since(&before));
    let result = evaluate(&shared, &participants, &logs, Spent { server, commits, bench, encrypt_s });
    Ok((participants, result))
}

/// Encrypts every sender's messages for the window, senders in parallel.
async fn encrypt_all(
    participants: &mut [Participant],
    rooms: &[Room],
    per_sender: usize,
    size: usize,
) -> Result<Vec<Vec<Vec<u8>>>> {
    let senders = participants.iter().filter_map(|p| p.sender).max().map_or(0, |m| m + 1);
    let mut outboxes = vec![Vec::new(); senders];
    let mut jobs = Vec::new();
    for (slot, p) in participants.iter_mut().enumerate() {
        let Some(sender) = p.sender else { continue };
        let Some(mls) = p.member.mls.take() else { bail!("sender {} has no MLS state", p.member.name) };
        let group_id = rooms[p.room].group_id.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            let messages: Result<Vec<Vec<u8>>> =
                (0..per_sender).map(|k| Ok(mls.encrypt(&group_id, &payload(sender, k, size))?)).collect();
            (slot, sender, mls, messages)
        }));
    }
    for job in jobs {
        let (slot, sender, mls, messages) = job.await?;
        participants[slot].member.mls = Some(mls);
        outboxes[sender] = messages?;
    }
    Ok(outboxes)
}

/// Waits until the server is done with what came before the window (setup, or
/// an earlier sweep step that overloaded it, whose sends may still be committed
/// and fanned out after that step gave up on them): every member reads until
/// nothing has come for [`QUIET`], and again, until no room's newest entry moved
/// in between. Returns each room's newest seq.
async fn settle(participants: &mut [Participant], rooms: &[Room]) -> Result<Vec<conclave_proto::Seq>> {
    let mut before = None;
    for _ in 0..SETTLE_ROUNDS {
        let drained =
            futures_util::future::join_all(participants.iter_mut().map(|p| p.member.peer.drain(QUIET))).await;
        drained.into_iter().collect::<Result<Vec<()>>>()?;
        let mut seqs = Vec::with_capacity(rooms.len());
        for (index, room) in rooms.iter().enumerate() {
            seqs.push(current_seq(participants, index, room).await?);
        }
        if before.as_ref() == Some(&seqs) {
            return Ok(seqs);
        }
        before = Some(seqs);
    }
    bail!("the server did not settle: rooms still had new entries after {SETTLE_ROUNDS} quiet periods")
}

/// The room's newest seq, asked by one of its members.
async fn current_seq(
    participants: &mut [Participant],
    index: usize,
    room: &Room,
) -> Result<conclave_proto::Seq> {
    let Some(p) = participants.iter_mut().find(|p| p.room == index) else { return Ok(room.setup_seq) };
    match p.member.peer.call(Request::Fetch { room: room.id, after: room.setup_seq, limit: 0 }).await? {
        Reply::Log { last_seq, .. } => Ok(last_seq),
        _ => bail!("unexpected answer to `fetch`"),
    }
}

/// One member's task: sends on its ticks (if it sends), records every entry,
/// decrypts what it verifies, until its room's last entry arrived or the
/// deadline passed.
async fn drive(mut p: Participant, outbox: Vec<Vec<u8>>, shared: Arc<Shared>) -> (Participant, Log) {
    let plan = shared.plan;
    let room = &shared.rooms[p.room];
    let base = room.setup_seq.0;
    let progress = &shared.progress[p.room];
    let mut last_rx = progress.last.subscribe();
    let mut log = Log::default();
    log.arrivals.reserve(outbox.len().max(64) * 2);

    let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
    let phase = p.sender.map_or(Duration::ZERO, |i| {
        let senders = shared.sender_names.len().max(1);
        #[allow(clippy::cast_precision_loss)] // Sender counts are small.
        period.mul_f64((i % senders) as f64 / senders as f64)
    });
    let mut ticker = interval_at((shared.t0 + phase).into(), period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let deadline = sleep_until((shared.t0 + plan.duration + plan.deliver_within).into());
    tokio::pin!(deadline);

    let mut outbox = outbox.into_iter();
    let mut sending = p.sender.is_some() && outbox.len() > 0;
    let nonce_base = rand::random::<u64>() >> 12;
    let mut pending: HashMap<u64, u32> = HashMap::new();
    let mut posted: u64 = 0;
    let mut max_acked: i64 = 0;
    let mut sender_reported = p.sender.is_none();
    let mut seen_last: i64 = base;
    let mut verifier = Verifier::new(p.verify, plan.sample);
    let counting = p.verify == Verify::No;
    let elapsed_us = |t0: Instant| u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);

    loop {
        if !sender_reported && !sending && pending.is_empty() {
            progress.sender_done(max_acked);
            sender_reported = true;
        }
        let last = *last_rx.borrow_and_update();
        if sender_reported && last.is_some_and(|l| seen_last >= l) {
            break;
        }
        tokio::select! {
            biased;
            _ = ticker.tick(), if sending => {
                let Some(ciphertext) = outbox.next() else { sending = false; continue };
                let send_us = elapsed_us(shared.t0);
                let request = Request::Send { room: room.id, ciphertext: Bytes(ciphertext), nonce: nonce_base + posted };
                match p.member.peer.post(request).await {
                    Ok(id) => {
                        pending.insert(id, send_us);
                        posted += 1;
                        log.offered += 1;
                    }
                    Err(err) => {
                        log.failure = Some(format!("{err:#}"));
                        break;
                    }
                }
                if outbox.len() == 0 {
                    sending = false;
                }
            }
            text = p.member.peer.text() => {
                let now_us = elapsed_us(shared.t0);
                let text = match text {
                    Ok(text) => text,
                    Err(err) => {
                        log.failure = Some(format!("{err:#}"));
                        break;
                    }
                };
                // A member that only counts reads an entry's seq and nothing more.
                if counting && let Some(seq) = probe::entry_seq(&text, room.id.0) {
                    log.arrive(seq, base, now_us, &mut seen_last);
                    continue;
                }
                let frame = match decode_server_frame(&text) {
                    Ok(frame) => frame,
                    Err(err) => {
                        log.failure = Some(format!("{err:#}"));
                        break;
                    }
                };
                match frame {
                    ServerFrame::Event { event: Event::Entry { room: id, entry } } if id == room.id => {
                        if log.arrive(entry.seq.0, base, now_us, &mut seen_last)
                            && entry.device != p.member.device
                            && let EntryBody::Message { ciphertext: Some(ciphertext), .. } = entry.body
                        {
                            verifier.observe(&p, &shared, &room.group_id, &entry.sender, entry.device.0, ciphertext.0, &mut log);
                        }
                    }
                    ServerFrame::Event { event: Event::Resync } => log.resyncs += 1,
                    ServerFrame::Event { .. } => {}
                    ServerFrame::Response(Response { id, outcome }) => {
                        let Some(send_us) = pending.remove(&id) else { continue };
                        match outcome {
                            Outcome::Ok(Reply::Sent { seq, .. }) => {
                                log.acked += 1;
                                max_acked = max_acked.max(seq.0);
                                log.sends.push((u32::try_from(seq.0 - base).unwrap_or(u32::MAX), send_us));
                            }
                            Outcome::Ok(_) => *log.errors.entry("unexpected_reply".into()).or_default() += 1,
                            Outcome::Error(error) => {
                                *log.errors.entry(format!("{:?}", error.code)).or_default() += 1;
                            }
                        }
                    }
                }
            }
            _ = last_rx.changed() => {}
            () = &mut deadline => break,
        }
    }
    if !sender_reported {
        progress.sender_done(max_acked);
    }
    verifier.finish(&p, &shared, &room.group_id, &mut log);
    (p, log)
}

/// Decides which messages a member decrypts, and checks them.
#[derive(Debug)]
struct Verifier {
    verify: Verify,
    sample: u32,
    /// Per sending device: messages seen, the last counter decrypted, and the
    /// newest message not decrypted (decrypted at the end: every sender's last
    /// message is checked).
    senders: HashMap<i64, SenderState>,
}

#[derive(Debug, Default)]
struct SenderState {
    seen: u64,
    last_counter: Option<usize>,
    undecrypted: Option<(String, Vec<u8>)>,
}

impl Verifier {
    fn new(verify: Verify, sample: u32) -> Self {
        Self { verify, sample: sample.clamp(1, MAX_SAMPLE), senders: HashMap::new() }
    }

    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        p: &Participant,
        shared: &Shared,
        group_id: &[u8],
        sender: &str,
        device: i64,
        ciphertext: Vec<u8>,
        log: &mut Log,
    ) {
        if self.verify == Verify::No {
            return;
        }
        let state = self.senders.entry(device).or_default();
        let now = self.verify == Verify::All || state.seen.is_multiple_of(u64::from(self.sample));
        state.seen += 1;
        if now {
            state.undecrypted = None;
            check(p, shared, group_id, sender, device, &ciphertext, state, log);
        } else {
            state.undecrypted = Some((sender.to_owned(), ciphertext));
        }
    }

    fn finish(&mut self, p: &Participant, shared: &Shared, group_id: &[u8], log: &mut Log) {
        for (&device, state) in &mut self.senders {
            if let Some((sender, ciphertext)) = state.undecrypted.take() {
                check(p, shared, group_id, &sender, device, &ciphertext, state, log);
            }
        }
    }
}

/// Decrypts one message and checks its MLS sender and content.
#[allow(clippy::too_many_arguments)]
fn check(
    p: &Participant,
    shared: &Shared,
    group_id: &[u8],
    sender: &str,
    device: i64,
    ciphertext: &[u8],
    state: &mut SenderState,
    log: &mut Log,
) {
    let Some(mls) = p.member.mls.as_ref() else { return };
    match mls.process(group_id, ciphertext) {
        Ok(Processed::Application { sender: from, plaintext, .. }) => {
            log.decrypted += 1;
            let good = from.user == sender
                && from.device == device
                && parse_payload(&plaintext).is_some_and(|(index, counter)| {
                    let ok = plaintext.len() == shared.plan.size
                        && shared.sender_names.get(index).is_some_and(|n| n == sender)
                        && state.last_counter.is_none_or(|last| counter > last);
                    state.last_counter = Some(counter);
                    ok
                });
            if !good {
                log.content_errors += 1;
            }
        }
        Ok(_) => log.content_errors += 1,
        Err(err) => {
            tracing::debug!(%err, "a message did not decrypt");
            log.decrypt_failures += 1;
        }
    }
}

/// What a run cost, measured around its window.
struct Spent {
    server: Option<Usage>,
    commits: Option<Commits>,
    bench: Usage,
    encrypt_s: f64,
}

/// Joins sends and arrivals into latencies and checks every receiver's log.
fn evaluate(shared: &Shared, participants: &[Participant], logs: &[Log], spent: Spent) -> RunResult {
    let Spent { server, commits, bench, encrypt_s } = spent;
    let plan = shared.plan;
    // Per room: the last expected offset, and send times by offset.
    let lasts: Vec<u32> = shared
        .rooms
        .iter()
        .zip(&shared.progress)
        .map(|(room, progress)| {
            let last = progress.last.borrow().unwrap_or_else(|| progress.max_seq.load(Ordering::SeqCst));
            u32::try_from((last - room.setup_seq.0).max(0)).unwrap_or(0)
        })
        .collect();
    let mut send_times: Vec<Vec<u32>> = lasts.iter().map(|&l| vec![u32::MAX; l as usize + 1]).collect();
    let mut first_send = u32::MAX;
    for (p, log) in participants.iter().zip(logs) {
        for &(offset, us) in &log.sends {
            if let Some(slot) = send_times[p.room].get_mut(offset as usize) {
                *slot = us;
            }
            first_send = first_send.min(us);
        }
    }

    let mut latency = Latency::new();
    let mut loss = Loss::default();
    let mut errors = BTreeMap::new();
    let (mut deliveries, mut expected, mut last_arrival) = (0u64, 0u64, 0u32);
    let mut content = Content::default();
    let (mut offered, mut acked, mut resyncs, mut failures) = (0, 0, 0, 0);
    for (p, log) in participants.iter().zip(logs) {
        let last = lasts[p.room];
        let times = &send_times[p.room];
        expected += u64::from(last);
        let mut next = 1u32;
        for &(offset, us) in &log.arrivals {
            if offset > last {
                continue;
            }
            deliveries += 1;
            last_arrival = last_arrival.max(us);
            if let Some(&sent) = times.get(offset as usize)
                && sent != u32::MAX
            {
                latency.record_us(u64::from(us.saturating_sub(sent)));
            }
            if offset < next {
                loss.duplicated_or_reordered += 1;
            } else {
                loss.missing += u64::from(offset - next);
                next = offset + 1;
            }
        }
        let tail = u64::from((last + 1).saturating_sub(next));
        loss.missing += tail;
        if next > last && tail == 0 {
            loss.complete_receivers += 1;
        }
        offered += log.offered;
        acked += log.acked;
        resyncs += log.resyncs;
        failures += u64::from(log.failure.is_some());
        if let Some(failure) = &log.failure {
            tracing::warn!(member = %p.member.name, %failure, "connection failed during the run");
        }
        for (code, n) in &log.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
        content.decrypted += log.decrypted;
        content.decrypt_failures += log.decrypt_failures;
        content.content_errors += log.content_errors;
    }
    loss.exactly_once_in_order = loss.missing == 0 && loss.duplicated_or_reordered == 0;
    let span = Duration::from_micros(u64::from(last_arrival.saturating_sub(first_send.min(last_arrival))));
    let deliveries_u = deliveries;
    RunResult {
        senders: shared.sender_names.len(),
        receivers: participants.len(),
        rate_per_sender: plan.rate,
        size: plan.size,
        duration_s: plan.duration.as_secs_f64(),
        offered,
        offered_msgs_per_s: per_sec(offered, plan.duration),
        acked,
        deliveries: deliveries_u,
        expected_deliveries: expected,
        delivered_per_s: per_sec(deliveries_u, span),
        span_s: span.as_secs_f64(),
        latency: latency.summary(),
        errors,
        connection_failures: failures,
        resyncs,
        loss,
        content,
        encrypt_s,
        server_cpu_us_per_delivery: crate::stats::cpu_us_per(server.as_ref(), deliveries_u),
        server_commits: commits,
        server,
        bench,
    }
}

impl RunResult {
    /// Human lines for a report.
    pub fn describe(&self, report: &mut crate::stats::Report) {
        report.line(
            "offered",
            format!(
                "{} msgs ({:.1} msg/s in: {} senders x {:.2}/s, {} B) over {:.1} s",
                self.offered,
                self.offered_msgs_per_s,
                self.senders,
                self.rate_per_sender,
                self.size,
                self.duration_s
            ),
        );
        report.line(
            "delivered",
            format!(
                "{} of {} deliveries to {} receivers, {:.0} deliveries/s over {:.2} s",
                self.deliveries, self.expected_deliveries, self.receivers, self.delivered_per_s, self.span_s
            ),
        );
        report.line("latency", self.latency.line());
        report.line(
            "loss check",
            format!(
                "{} (missing {}, duplicated/reordered {}, complete receivers {}/{})",
                if self.loss.exactly_once_in_order { "every entry exactly once, in order" } else { "FAILED" },
                self.loss.missing,
                self.loss.duplicated_or_reordered,
                self.loss.complete_receivers,
                self.receivers
            ),
        );
        report.line(
            "content",
            format!(
                "{} decrypted, {} failed, {} wrong",
                self.content.decrypted, self.content.decrypt_failures, self.content.content_errors
            ),
        );
        report.line(
            "errors",
            format!(
                "{:?}  acked {}  connection failures {}  resyncs {}",
                self.errors, self.acked, self.connection_failures, self.resyncs
            ),
        );
        if let Some(server) = &self.server {
            report.line("server", server.line());
        }
        if let Some(us) = self.server_cpu_us_per_delivery {
            report.line("server cpu/delivery", format!("{us:.2} µs"));
        }
        if let Some(commits) = &self.server_commits {
            report.line("server commits", commits.line());
        }
        report.line("bench", self.bench.line());
        report.line("encrypting (before)", format!("{:.2} s", self.encrypt_s));
    }
}
