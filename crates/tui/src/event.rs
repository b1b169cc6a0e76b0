//! The one event channel: terminal input (crossterm's async `EventStream`),
//! ticks and termination signals are merged into the same bounded channel
//! the engine writes to, so the main loop waits on one receiver and never
//! polls.

use crate::app::AppEvent;
use crossterm::event::EventStream;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often the clock ticks: count-downs and typing indicators move at this
/// pace.
pub const TICK: Duration = Duration::from_millis(500);

/// Capacity of the event channel: terminal input waits when the application
/// falls behind, rather than memory growing.
pub const CAPACITY: usize = 256;

/// Resolves once shutdown is signalled (or nobody can signal it any more).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await (it is not
    // `Send`): drop it at once.
    drop(shutdown.wait_for(|stop| *stop).await);
}

/// Starts the producers; each stops at shutdown or when the receiver is gone.
pub fn spawn_sources(events: &mpsc::Sender<AppEvent>, shutdown: &watch::Receiver<bool>) {
    tokio::spawn(terminal_input(events.clone(), shutdown.clone()));
    tokio::spawn(ticks(events.clone(), shutdown.clone()));
    tokio::spawn(signals(events.clone(), shutdown.clone()));
}

async fn terminal_input(events: mpsc::Sender<AppEvent>, mut shutdown: watch::Receiver<bool>) {
    let mut stream = EventStream::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            event = stream.next() => match event {
                Some(Ok(event)) => {
                    if events.send(AppEvent::Terminal(event)).await.is_err() {
                        return;
                    }
                }
                // The terminal is gone (hang-up): leave.
                Some(Err(_)) | None => {
                    events.send(AppEvent::Terminate).await.ok();
                    return;
                }
            },
        }
    }
}

async fn ticks(events: mpsc::Sender<AppEvent>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            now = interval.tick() => {
                if events.send(AppEvent::Tick(now)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// SIGTERM and SIGHUP end the program through the normal path, so the
/// terminal is restored.
async fn signals(events: mpsc::Sender<AppEvent>, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        tracing::warn!("cannot listen for SIGTERM/SIGHUP");
        return;
    };
    tokio::select! {
        () = stopped(&mut shutdown) => {}
        _ = term.recv() => { events.send(AppEvent::Terminate).await.ok(); }
        _ = hup.recv() => { events.send(AppEvent::Terminate).await.ok(); }
    }
}
