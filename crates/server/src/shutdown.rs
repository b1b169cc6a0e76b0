//! Shutdown signalling. One `watch` value says "stop"; every task holds a
//! [`Shutdown`], and a task that subscribes late still sees a signal already
//! given (unlike a broadcast).

use tokio::sync::watch;

/// Listens for the server's shutdown signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    notify: watch::Receiver<bool>,
}

/// Gives the shutdown signal.
#[derive(Debug)]
pub struct Trigger {
    notify: watch::Sender<bool>,
}

/// A connected trigger and listener.
#[must_use]
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { notify: tx }, Shutdown { notify: rx })
}

impl Trigger {
    /// Tells every [`Shutdown`] to stop.
    pub fn fire(&self) {
        self.notify.send_replace(true);
    }
}

impl Shutdown {
    /// Waits for the signal. Cancel-safe; returns at once if already given, or if
    /// the trigger is gone.
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped: treat it as the signal.
        self.notify.wait_for(|stop| *stop).await.ok();
    }
}
