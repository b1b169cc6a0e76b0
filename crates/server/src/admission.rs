//! [`Admission`]: which connections the server takes on before anyone has
//! logged in.
//!
//! A connection costs memory from its TCP accept on (socket, TLS state, HTTP
//! and WebSocket buffers, a task), while nothing yet says who is behind it. Two
//! caps bound what strangers can make the server hold:
//!
//! * **Per address.** At most `max_connections_per_address` open connections
//!   from one IPv4 address or one IPv6 /64 (one subscriber's usual allocation:
//!   any single host can use a whole /64), authenticated or not, so one
//!   attacker's address cannot take every slot.
//! * **Unauthenticated, overall.** At most `max_unauthenticated_connections`
//!   connections between accept and login, from all addresses together, so a
//!   flood from many addresses is bounded too. Logged-in connections are bounded
//!   per account instead.
//!
//! A connection past a cap is closed right after the accept, before its TLS
//! handshake: that is the cheapest point, and nothing can be said to a peer
//! that has not yet agreed on keys. The hello and login deadlines
//! (`hello_timeout_secs`, `auth_timeout_secs`, enforced by the session) make
//! every unauthenticated slot temporary.
//!
//! Refusals are counted (`conclave_connections_refused_total`) and logged as a
//! warning at most once per [`WARN_EVERY`] and cap, with the number refused in
//! between, so a flood cannot flood the log as well.

use crate::metrics::Metrics;
use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Shortest time between two warnings about the same cap.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Whom one cap counts together: an IPv4 address, or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    /// One IPv4 address (also when it arrives IPv4-mapped on a dual-stack socket).
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Network(u64),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                // The high half of the 128 bits: the /64 network.
                None => Self::V6Network(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Network(network) => {
                write!(f, "{}/64", std::net::Ipv6Addr::from(u128::from(*network) << 64))
            }
        }
    }
}

/// Why a connection was not taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address (or /64) holds `max_connections_per_address` connections.
    AddressLimit,
    /// `max_unauthenticated_connections` connections have not logged in yet.
    UnauthenticatedLimit,
}

impl Refusal {
    /// The `reason` label of `conclave_connections_refused_total`.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::AddressLimit => "address_limit",
            Self::UnauthenticatedLimit => "unauthenticated_limit",
        }
    }
}

/// The connection caps and their counts. Shared by the accept loop (which
/// admits) and every connection (whose [`Ticket`] gives its slots back).
#[derive(Debug)]
pub(crate) struct Admission {
    max_per_address: usize,
    max_unauthenticated: usize,
    /// Open connections per address. A `std` mutex: held for one map update
    /// per accept and per close, never across an `.await`.
    per_address: Mutex<HashMap<AddressKey, usize>>,
    /// Connections admitted that have not logged in yet.
    unauthenticated: AtomicUsize,
    metrics: Arc<Metrics>,
    address_warning: Throttle,
    unauthenticated_warning: Throttle,
}

impl Admission {
    pub(crate) fn new(max_per_address: usize, max_unauthenticated: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            max_per_address,
            max_unauthenticated,
            per_address: Mutex::new(HashMap::new()),
            unauthenticated: AtomicUsize::new(0),
            metrics,
            address_warning: Throttle::new(WARN_EVERY),
            unauthenticated_warning: Throttle::new(WARN_EVERY),
        }
    }

    /// Takes on a connection from `ip`, or says why not (after counting and,
    /// at most every [`WARN_EVERY`], logging the refusal). The ticket holds the
    /// connection's slots until it is dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let key = AddressKey::of(ip);
        let result = {
            let mut per_address = self.per_address.lock().unwrap_or_else(PoisonError::into_inner);
            let open = per_address.get(&key).copied().unwrap_or(0);
            if open >= self.max_per_address {
                Err(Refusal::AddressLimit)
            } else if self
                .unauthenticated
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_unauthenticated).then_some(n + 1)
                })
                .is_err()
            {
                Err(Refusal::UnauthenticatedLimit)
            } else {
                per_address.insert(key, open + 1);
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                self.metrics.connections_unauthenticated.inc();
                Ok(Ticket { admission: self.clone(), key, authenticated: AtomicBool::new(false) })
            }
            Err(refusal) => {
                self.metrics.connection_refused(refusal.label());
                self.warn(refusal, key);
                Err(refusal)
            }
        }
    }

    fn warn(&self, refusal: Refusal, key: AddressKey) {
        match refusal {
            Refusal::AddressLimit => {
                if let Some(since) = self.address_warning.ready() {
                    tracing::warn!(
                        address = %key,
                        limit = self.max_per_address,
                        refused_since_last_warning = since,
                        "refusing connections: an address reached max_connections_per_address"
                    );
                }
            }
            Refusal::UnauthenticatedLimit => {
                if let Some(since) = self.unauthenticated_warning.ready() {
                    tracing::warn!(
                        address = %key,
                        limit = self.max_unauthenticated,
                        refused_since_last_warning = since,
                        "refusing connections: max_unauthenticated_connections are open and not logged in"
                    );
                }
            }
        }
    }

    fn release(&self, key: AddressKey, authenticated: bool) {
        if !authenticated {
            self.release_unauthenticated();
        }
        let mut per_address = self.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        match per_address.get_mut(&key) {
            Some(open) if *open > 1 => *open -= 1,
            _ => {
                per_address.remove(&key);
            }
        }
    }

    fn release_unauthenticated(&self) {
        self.unauthenticated.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connections_unauthenticated.dec();
    }
}

/// One admitted connection's slots: its place under its address's cap, and
/// until [`Ticket::authenticated`] its place among the unauthenticated. Both are
/// given back when the ticket drops.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    key: AddressKey,
    /// Set once the connection logged in: its unauthenticated slot is free.
    authenticated: AtomicBool,
}

impl Ticket {
    /// The connection logged in: it no longer counts as unauthenticated.
    /// Further calls do nothing.
    pub(crate) fn authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::AcqRel) {
            self.admission.release_unauthenticated();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.key, *self.authenticated.get_mut());
    }
}

/// Lets an event through at most once per interval and counts the ones held
/// back in between.
#[derive(Debug)]
struct Throttle {
    every: Duration,
    /// When the event was last let through. A `std` mutex: one comparison.
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Self { every, last: Mutex::new(None), held_back: AtomicU64::new(0) }
    }

    /// `Some(held back since the last one)` when this event may go through.
    fn ready(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_address: usize, unauthenticated: usize) -> Arc<Admission> {
        Arc::new(Admission::new(per_address, unauthenticated, Arc::new(Metrics::new())))
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        assert_eq!(AddressKey::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(AddressKey::of(mapped), AddressKey::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn an_address_past_its_cap_is_refused_and_others_are_not() {
        let admission = admission(2, 100);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let tickets = [admission.admit(one).unwrap(), admission.admit(one).unwrap()];
        assert_eq!(admission.admit(one).unwrap_err(), Refusal::AddressLimit);
        let other = admission.admit("192.0.2.2".parse().unwrap()).expect("another address");
        drop(tickets);
        admission.admit(one).expect("slots come back when connections close");
        drop(other);
    }

    #[test]
    fn logged_in_connections_leave_the_unauthenticated_cap() {
        let admission = admission(100, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = admission.admit(ip).unwrap();
        let _second = admission.admit(ip).unwrap();
        assert_eq!(admission.admit(ip).unwrap_err(), Refusal::UnauthenticatedLimit);
        first.authenticated();
        first.authenticated();
        let _third = admission.admit(ip).expect("a login frees one slot, once");
        assert_eq!(admission.admit(ip).unwrap_err(), Refusal::UnauthenticatedLimit);
        drop(first);
        assert_eq!(admission.admit(ip).unwrap_err(), Refusal::UnauthenticatedLimit);
        assert_eq!(admission.per_address.lock().unwrap().get(&AddressKey::of(ip)), Some(&2));
    }

    #[test]
    fn the_throttle_lets_one_through_per_interval_and_counts_the_rest() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.ready(), Some(0));
        assert_eq!(throttle.ready(), None);
        assert_eq!(throttle.ready(), None);
        *throttle.last.lock().unwrap() = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(throttle.ready(), Some(2));
    }
}
