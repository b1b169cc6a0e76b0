//! `room`: M members in one room (one real MLS group), K of them sending R
//! messages a second of B bytes for D seconds; every member receives.
//!
//! The owner and K − 1 members added last send; `--verifiers` members added just
//! before them decrypt a sample; the rest only count entries (see
//! [`crate::group`] for why). Members added last follow the fewest commits,
//! which keeps setup short.

use crate::{
    group::{self, Member, Room},
    population::{self, User},
    server::Target,
    stats::Report,
    traffic::{self, MAX_SAMPLE, Participant, Plan, Verify},
};
use anyhow::{Result, bail};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Flags of `room`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomArgs {
    /// Members of the room, the owner included.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Members that send (the owner first).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second each sender offers.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Plaintext bytes per message.
    #[arg(long, default_value_t = 140)]
    pub size: usize,
    /// Length of the sending window, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// How results are checked: shared by `room`, `dm` and `sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Members (other than senders) that decrypt a sample of the messages.
    #[arg(long, default_value_t = 2)]
    pub verifiers: usize,
    /// Verifiers decrypt one message in this many of each sender, and each
    /// sender's last one (at most 500).
    #[arg(long, default_value_t = 100)]
    pub sample: u32,
    /// Every member keeps MLS state and decrypts every message (full client cost).
    #[arg(long)]
    pub decrypt_all: bool,
    /// Seconds after the sending window within which everything must arrive.
    #[arg(long, default_value_t = 10.0)]
    pub deliver_within_s: f64,
}

/// What setting a room up cost.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Setup {
    /// Registering the accounts, s.
    pub register_s: f64,
    /// Connecting, binding devices and uploading/claiming KeyPackages, s.
    pub connect_s: f64,
    /// Creating the group, adding every member, full members joining, s.
    pub group_s: f64,
    /// Server resident memory after setup, KiB.
    pub server_rss_kib: Option<u64>,
}

/// A room ready for traffic.
#[derive(Debug)]
pub struct ReadyRoom {
    /// The room.
    pub room: Room,
    /// Its members with their parts.
    pub participants: Vec<Participant>,
    /// What setup cost.
    pub setup: Setup,
    /// The accounts, in member order.
    pub users: Vec<User>,
}

/// Registers `members` users, builds their room and assigns senders and
/// verifiers.
///
/// # Errors
/// Any setup step that fails.
pub async fn prepare(
    target: &Target,
    tag: &str,
    members: usize,
    senders: usize,
    check: &CheckArgs,
) -> Result<ReadyRoom> {
    if members < 2 || senders == 0 || senders > members {
        bail!("need at least 2 members and 1 to {members} senders");
    }
    if check.sample == 0 || check.sample > MAX_SAMPLE {
        bail!("--sample must be between 1 and {MAX_SAMPLE}");
    }
    let mut setup = Setup::default();
    let started = Instant::now();
    let users = population::register(target, tag, members).await?.users;
    setup.register_s = started.elapsed().as_secs_f64();

    // Senders: the owner (0) and the last senders − 1 members; verifiers just before them.
    let first_other_sender = members - (senders - 1);
    let first_verifier = first_other_sender.saturating_sub(check.verifiers).max(1);
    let is_sender = |i: usize| i == 0 || i >= first_other_sender;
    let is_verifier = |i: usize| (first_verifier..first_other_sender).contains(&i);
    let started = Instant::now();
    let mut members: Vec<Member> =
        group::connect_members(target, &users, |i| check.decrypt_all || is_sender(i) || is_verifier(i))
            .await?;
    setup.connect_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut owner = members.remove(0);
    let info = group::create_room(&mut owner, &format!("{tag}room")).await?;
    let room = group::build_group(&mut owner, &mut members, &info).await?;
    members.insert(0, owner);
    setup.group_s = started.elapsed().as_secs_f64();
    setup.server_rss_kib = target.sample().await.map(|s| s.rss_kib);

    let mut next_sender = 0;
    let participants = members
        .into_iter()
        .enumerate()
        .map(|(i, member)| {
            let sender = is_sender(i).then(|| {
                next_sender += 1;
                next_sender - 1
            });
            let verify = if check.decrypt_all {
                Verify::All
            } else if is_verifier(i) {
                Verify::Sample
            } else {
                Verify::No
            };
            Participant { member, room: 0, sender, verify }
        })
        .collect();
    Ok(ReadyRoom { room, participants, setup, users })
}

/// The plan of one run from the flags.
#[must_use]
pub fn plan(rate: f64, size: usize, duration: f64, check: &CheckArgs) -> Plan {
    Plan {
        duration: Duration::from_secs_f64(duration),
        rate,
        size,
        sample: check.sample,
        deliver_within: Duration::from_secs_f64(check.deliver_within_s),
    }
}

impl Setup {
    /// The setup line of a human summary.
    pub fn describe(&self, report: &mut Report, members: usize) {
        report.line(
            "setup",
            format!(
                "register {:.1} s, connect+bind {:.1} s, group of {members} {:.1} s",
                self.register_s, self.connect_s, self.group_s
            ),
        );
    }
}

/// Runs the scenario.
///
/// # Errors
/// Setup failures.
pub async fn run(target: &Target, args: &RoomArgs) -> Result<Report> {
    let tag = crate::run_tag("r");
    let ready = prepare(target, &tag, args.members, args.senders, &args.check).await?;
    let plan = plan(args.rate, args.size, args.duration, &args.check);
    let (participants, result) =
        traffic::run(target, std::slice::from_ref(&ready.room), ready.participants, plan).await?;
    close_all(participants).await;

    let mut report = Report::new("room");
    ready.setup.describe(&mut report, args.members);
    result.describe(&mut report);
    report.field("members", args.members);
    report.field("verifiers", if args.check.decrypt_all { args.members } else { args.check.verifiers });
    report.field("decrypt_all", args.check.decrypt_all);
    report.field("setup", ready.setup);
    report.field("result", &result);
    Ok(report)
}

/// Closes every member's connection.
pub async fn close_all(participants: Vec<Participant>) {
    let closes = participants.into_iter().map(|p| p.member.peer.close());
    futures_util::future::join_all(closes).await;
}
