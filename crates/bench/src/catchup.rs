//! `catchup`: a member is offline while N messages are sent to its room; then it
//! reconnects and catches up as a client does after a restart (`hello`,
//! `authenticate`, `device` with its saved id, `fetch` pages of up to 500
//! entries, each message decrypted and checked, in order). Reports the time until
//! it has processed all of them, and how much of it was waiting for the server.

use crate::{
    group::Member,
    peer::Peer,
    room::{self, CheckArgs},
    server::{ProcessSample, Target},
    stats::{Report, Usage, cpu_us_per, per_sec},
    traffic::payload,
};
use anyhow::{Context, Result, bail};
use conclave_client::mls::Processed;
use conclave_proto::{Bytes, EntryBody, Outcome, Reply, Request, Response, ServerFrame, limits::MAX_FETCH};
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

/// Flags of `catchup`.
#[derive(Debug, Clone, clap::Args)]
pub struct CatchupArgs {
    /// Messages sent while the member is offline.
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Members of the room (the sender and the offline member included; the others only receive).
    #[arg(long, default_value_t = 2)]
    pub members: usize,
    /// Plaintext bytes per message.
    #[arg(long, default_value_t = 140)]
    pub size: usize,
}

/// Sends in flight at once while filling the room.
const SEND_WINDOW: usize = 256;

/// Runs the scenario.
///
/// # Errors
/// Setup failures, refused requests, wrong content.
pub async fn run(target: &Target, args: &CatchupArgs) -> Result<Report> {
    if args.members < 2 || args.messages == 0 || args.size < crate::traffic::HEADER_BYTES {
        bail!("need at least 2 members, 1 message and --size of at least {}", crate::traffic::HEADER_BYTES);
    }
    let tag = crate::run_tag("k");
    let check = CheckArgs { verifiers: 1, sample: 1, decrypt_all: false, deliver_within_s: 10.0 };
    let ready = room::prepare(target, &tag, args.members, 1, &check).await?;
    let group_id = ready.room.group_id.clone();
    let room_id = ready.room.id;
    let mut participants = ready.participants;
    // The verifier is the member that goes offline.
    let offline_index = participants
        .iter()
        .position(|p| p.verify == crate::traffic::Verify::Sample)
        .context("no verifying member")?;
    let mut offline = participants.remove(offline_index).member;
    let token = ready.users[offline_index].token.clone();
    let mls = offline.mls.take().context("the offline member has no MLS state")?;
    let device = offline.device;
    let name = offline.name.clone();
    offline.peer.close().await;

    // Fill the room.
    let sender: &mut Member = &mut participants[0].member;
    let started = Instant::now();
    let sender_mls = sender.mls.as_ref().context("the sender has no MLS state")?;
    let ciphertexts: Vec<Vec<u8>> = (0..args.messages)
        .map(|k| Ok(sender_mls.encrypt(&group_id, &payload(0, k, args.size))?))
        .collect::<Result<_>>()?;
    let encrypt_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let last_seq = send_all(&mut sender.peer, room_id, ciphertexts).await?;
    let fill_s = started.elapsed().as_secs_f64();

    // Catch up.
    let server_before = target.sample().await;
    let bench_before = ProcessSample::own();
    let started = Instant::now();
    let mut peer = Peer::connect(target, &token).await?;
    peer.call(Request::Device { device_id: Some(device), signature_key: Bytes(mls.signature_public_key()?) })
        .await?;
    let connected = started.elapsed();
    let mut cursor = ready.room.setup_seq;
    let (mut waiting, mut processed, mut pages) = (Duration::ZERO, 0u64, 0u64);
    let mut expected_counter = 0usize;
    let mut seen = HashSet::new();
    while cursor < last_seq {
        let asked = Instant::now();
        let reply = peer.call(Request::Fetch { room: room_id, after: cursor, limit: MAX_FETCH }).await?;
        waiting += asked.elapsed();
        pages += 1;
        let Reply::Log { entries, .. } = reply else { bail!("unexpected answer to `fetch`") };
        if entries.is_empty() {
            bail!("the log ended at {cursor}, before {last_seq}");
        }
        for entry in entries {
            if entry.seq <= cursor || !seen.insert(entry.seq) {
                bail!("entry {} came twice or out of order", entry.seq);
            }
            cursor = entry.seq;
            let EntryBody::Message { ciphertext: Some(ciphertext), .. } = entry.body else { continue };
            match mls.process(&group_id, &ciphertext.0)? {
                Processed::Application { plaintext, .. }
                    if plaintext == payload(0, expected_counter, args.size) =>
                {
                    expected_counter += 1;
                    processed += 1;
                }
                _ => bail!("message {} has the wrong sender or content", entry.seq),
            }
        }
    }
    let elapsed = started.elapsed();
    let server = Usage::maybe(server_before, target.sample().await);
    let bench = Usage::between(bench_before, ProcessSample::own());
    if processed != args.messages as u64 {
        bail!("{name} processed {processed} of {} messages", args.messages);
    }
    peer.close().await;
    room::close_all(participants).await;

    let mut report = Report::new("catchup");
    report.line(
        "setup",
        format!(
            "room of {} ready in {:.1} s; {} messages encrypted in {encrypt_s:.1} s, sent in {fill_s:.1} s",
            args.members,
            ready.setup.register_s + ready.setup.connect_s + ready.setup.group_s,
            args.messages
        ),
    );
    report.line(
        "caught up",
        format!(
            "{processed} messages in {:.3} s ({:.0} msg/s): connect+auth+device {:.3} s, waiting for {pages} fetch pages {:.3} s, decrypting the rest",
            elapsed.as_secs_f64(),
            per_sec(processed, elapsed),
            connected.as_secs_f64(),
            waiting.as_secs_f64()
        ),
    );
    if let Some(server) = &server {
        report.line("server", server.line());
    }
    if let Some(us) = cpu_us_per(server.as_ref(), processed) {
        report.line("server cpu/message", format!("{us:.2} µs"));
    }
    report.line("bench", bench.line());
    report.field("messages", args.messages);
    report.field("members", args.members);
    report.field("size", args.size);
    report.field("fill_s", fill_s);
    report.field("catchup_s", elapsed.as_secs_f64());
    report.field("connect_s", connected.as_secs_f64());
    report.field("fetch_wait_s", waiting.as_secs_f64());
    report.field("fetch_pages", pages);
    report.field("messages_per_s", per_sec(processed, elapsed));
    report.field("server_usage", server);
    report.field("server_cpu_us_per_message", cpu_us_per(server.as_ref(), processed));
    report.field("bench_usage", bench);
    Ok(report)
}

/// Sends every ciphertext with up to [`SEND_WINDOW`] in flight; returns the
/// last seq.
async fn send_all(
    peer: &mut Peer,
    room: conclave_proto::RoomId,
    ciphertexts: Vec<Vec<u8>>,
) -> Result<conclave_proto::Seq> {
    let total = ciphertexts.len();
    let nonce_base = rand::random::<u64>() >> 12;
    let mut queue = ciphertexts.into_iter().enumerate();
    let (mut in_flight, mut done) = (0usize, 0usize);
    let mut last = conclave_proto::Seq(0);
    while done < total {
        while in_flight < SEND_WINDOW
            && let Some((k, ciphertext)) = queue.next()
        {
            peer.post(Request::Send { room, ciphertext: Bytes(ciphertext), nonce: nonce_base + k as u64 })
                .await?;
            in_flight += 1;
        }
        match peer.frame().await? {
            ServerFrame::Response(Response { outcome: Outcome::Ok(Reply::Sent { seq, .. }), .. }) => {
                last = last.max(seq);
                in_flight -= 1;
                done += 1;
            }
            ServerFrame::Response(Response { outcome, .. }) => bail!("a send failed: {outcome:?}"),
            ServerFrame::Event { .. } => {}
        }
    }
    Ok(last)
}
