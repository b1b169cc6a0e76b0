//! [`Gate`]: polls a source of futures only when that source asked to be polled.
//!
//! A session task waits on several things at once (its socket, writing left by
//! the fan-out, the end of its session, a timer). Woken for one of them,
//! `select!` polls them all, and polling the socket goes down the whole
//! WebSocket, TLS and TCP read path, a system call, only to find nothing there.
//! A gate remembers whether the wakers it handed down have fired since the last
//! `Pending`, and skips the poll when they have not, as `FuturesUnordered` does
//! for its futures.

use futures_util::task::AtomicWaker;
use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

/// Remembers, across the fresh futures a loop makes for one source (the
/// socket's `read_frame()`, say), whether that source has been woken since it
/// last returned `Pending`.
///
/// Sound only for sources whose futures keep their state outside themselves
/// (cancel-safe reads from a connection or a channel): a `Pending` future may be
/// dropped, and the next one made after a wake-up picks up where it left off.
#[derive(Debug)]
pub(crate) struct Gate {
    signal: Arc<Signal>,
    /// Waker handed to the gated futures; fires `signal`.
    waker: Waker,
}

#[derive(Debug)]
struct Signal {
    /// The source may have something: poll it.
    woken: AtomicBool,
    /// The task waiting on the gate.
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Gate {
    /// A gate that polls its first future.
    pub(crate) fn new() -> Self {
        let signal = Arc::new(Signal { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        let waker = Waker::from(signal.clone());
        Self { signal, waker }
    }

    /// Runs `future`, but polls it only when the source was woken since its
    /// last `Pending` (or returned `Ready` last time, so there may be more).
    pub(crate) async fn run<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        std::future::poll_fn(|cx| {
            self.signal.task.register(cx.waker());
            if !self.signal.woken.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            match future.as_mut().poll(&mut Context::from_waker(&self.waker)) {
                Poll::Ready(output) => {
                    // The source may hold more already (buffered frames).
                    self.signal.woken.store(true, Ordering::Release);
                    Poll::Ready(output)
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use futures_util::FutureExt;
    use std::{cell::Cell, task::Context};
    use tokio::sync::mpsc;

    /// Receives from `rx` through the gate, counting polls of the source.
    async fn gated_recv(gate: &Gate, rx: &mut mpsc::Receiver<u32>, polls: &Cell<u32>) -> Option<u32> {
        gate.run(std::future::poll_fn(|cx: &mut Context<'_>| {
            polls.set(polls.get() + 1);
            rx.poll_recv(cx)
        }))
        .await
    }

    #[tokio::test]
    async fn polls_the_source_only_after_it_was_woken() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::channel(4);
        let polls = Cell::new(0);

        // First poll goes through and finds nothing; later ones are skipped.
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), None);
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), None);
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), None);
        assert_eq!(polls.get(), 1, "no wake-up, no poll of the source");

        // A send wakes the waker the source registered: the next run gets it.
        tx.send(7).await.unwrap();
        tx.send(8).await.unwrap();
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), Some(Some(7)));
        // After Ready the source is polled again without a wake-up: 8 is buffered.
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), Some(Some(8)));
        assert_eq!(gated_recv(&gate, &mut rx, &polls).now_or_never(), None);
        assert_eq!(polls.get(), 4);
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_the_source() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::channel(4);
        let polls = Cell::new(0);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            tx.send(42).await.unwrap();
        });
        let got =
            tokio::time::timeout(std::time::Duration::from_secs(5), gated_recv(&gate, &mut rx, &polls)).await;
        assert_eq!(got.expect("the send wakes the gated task"), Some(42));
        assert_eq!(polls.get(), 2, "polled once to wait, once when woken");
        sender.await.unwrap();
    }
}
