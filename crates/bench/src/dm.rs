//! `dm`: P pairs of users, each pair in its own direct conversation (a two-member
//! MLS group); both participants send R messages a second to each other.
//!
//! Every participant keeps its MLS state (two-member groups are cheap) and
//! decrypts a sample of what the other sends.

use crate::{
    group::{self, Member, Room},
    population,
    room::{CheckArgs, close_all, plan},
    server::Target,
    stats::Report,
    traffic::{self, Participant, Verify},
};
use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, stream};
use std::time::Instant;

/// Flags of `dm`.
#[derive(Debug, Clone, clap::Args)]
pub struct DmArgs {
    /// Pairs of users.
    #[arg(long, default_value_t = 500)]
    pub pairs: usize,
    /// Messages per second each participant sends.
    #[arg(long, default_value_t = 4.0)]
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

/// Direct conversations set up at once.
const PAIR_CONCURRENCY: usize = 16;

/// Runs the scenario.
///
/// # Errors
/// Setup failures.
pub async fn run(target: &Target, args: &DmArgs) -> Result<Report> {
    if args.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    let tag = crate::run_tag("d");
    let started = Instant::now();
    let users = population::register(target, &tag, args.pairs * 2).await?.users;
    let register_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let members = group::connect_members(target, &users, |_| true).await?;
    let connect_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut pairs: Vec<(Member, Member)> = Vec::with_capacity(args.pairs);
    let mut iter = members.into_iter();
    while let (Some(a), Some(b)) = (iter.next(), iter.next()) {
        pairs.push((a, b));
    }
    let built: Vec<Result<(Member, Member, Room)>> = stream::iter(pairs)
        .map(|(mut a, mut b)| async move {
            let info = group::open_direct(&mut a, &b.name).await?;
            let room = group::build_group(&mut a, std::slice::from_mut(&mut b), &info)
                .await
                .with_context(|| format!("direct conversation of {} and {}", a.name, b.name))?;
            Ok((a, b, room))
        })
        .buffered(PAIR_CONCURRENCY)
        .collect()
        .await;
    let group_s = started.elapsed().as_secs_f64();
    let server_rss_kib = target.sample().await.map(|s| s.rss_kib);

    let verify = if args.check.decrypt_all { Verify::All } else { Verify::Sample };
    let mut rooms = Vec::with_capacity(args.pairs);
    let mut participants = Vec::with_capacity(args.pairs * 2);
    for (index, pair) in built.into_iter().enumerate() {
        let (a, b, room) = pair?;
        rooms.push(room);
        for member in [a, b] {
            let sender = Some(participants.len());
            participants.push(Participant { member, room: index, sender, verify });
        }
    }
    let plan = plan(args.rate, args.size, args.duration, &args.check);
    let (participants, result) = traffic::run(target, &rooms, participants, plan).await?;
    close_all(participants).await;

    let mut report = Report::new("dm");
    report.line(
        "setup",
        format!(
            "register {register_s:.1} s, connect+bind {connect_s:.1} s, {} direct groups {group_s:.1} s",
            args.pairs
        ),
    );
    result.describe(&mut report);
    report.field("pairs", args.pairs);
    report.field(
        "setup",
        serde_json::json!({
            "register_s": register_s, "connect_s": connect_s, "group_s": group_s, "server_rss_kib": server_rss_kib,
        }),
    );
    report.field("result", &result);
    Ok(report)
}
