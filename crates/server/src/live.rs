//! Which connections use which session, so that logout and revocation close
//! every live connection that uses the ended session.

use conclave_proto::{SessionId, event::SessionEndReason};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::AtomicU64, atomic::Ordering},
};
use tokio::sync::mpsc;

type Senders = Vec<(u64, mpsc::Sender<SessionEndReason>)>;

/// Registry of authenticated connections by session. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveSessions {
    /// std `Mutex`: held only to insert, remove or copy out senders, never across
    /// an `.await`.
    inner: Arc<Mutex<HashMap<SessionId, Senders>>>,
    next_id: Arc<AtomicU64>,
}

/// Keeps a connection registered; unregisters on drop.
#[derive(Debug)]
pub struct Registration {
    live: LiveSessions,
    session: SessionId,
    id: u64,
}

impl LiveSessions {
    /// Registers a connection using `session`; the receiver hears when the
    /// session ends.
    pub fn register(&self, session: SessionId) -> (Registration, mpsc::Receiver<SessionEndReason>) {
        let (tx, rx) = mpsc::channel(1);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(session.clone()).or_default().push((id, tx));
        (Registration { live: self.clone(), session, id }, rx)
    }

    /// Tells every connection using `session` that it has ended.
    pub fn end(&self, session: &SessionId, reason: SessionEndReason) {
        let senders = self.lock().remove(session).unwrap_or_default();
        for (_, tx) in senders {
            // A full channel already carries an end notice; a closed one is gone.
            tx.try_send(reason).ok();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Senders>> {
        // A panic while holding this lock leaves the map consistent (every
        // operation is a single insert or remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.live.lock();
        if let Some(list) = map.get_mut(&self.session) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.session);
            }
        }
    }
}
