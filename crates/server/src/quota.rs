//! Per-account bounds: what one account may hold, and how fast it may act.
//!
//! * **Totals** — rooms an account owns, devices it registers, one-time
//!   KeyPackages and their bytes per device — are counted by the database in
//!   the transaction that adds one, under a lock on the owning row (the
//!   account's or the device's), so concurrent requests from any number of
//!   connections or nodes cannot pass a total together. Over one:
//!   `quota_exceeded` ([`Quota`]); waiting does not help.
//! * **Rates** — rooms created, messages and message bytes per minute per
//!   account, across all its connections and devices — are kept here, in
//!   memory, in governor's keyed GCRA limiters (as the per-address limits are),
//!   so the send path pays two map lookups and no database work. They are per
//!   server node: with several nodes an account may reach each node's rate.
//!   Over one: `rate_limited`.
//! * **KeyPackage budgets** — one-time KeyPackages of one user handed out per
//!   hour, across all claimers: a generous budget for claimers who share a
//!   private or direct room with the user, a small one for everyone else. A
//!   claim over its budget gets the user's last-resort package instead (see
//!   [`Quotas::one_time_claim`]), so nobody can use up another user's one-time
//!   packages, and adding people still works.
//!
//! Every refusal is counted in `conclave_quota_refusals_total` by `kind`.

use crate::{Config, auth::ratelimit::KeyedLimiter, error::RequestError, metrics::Metrics};
use conclave_proto::UserId;
use std::sync::Arc;

/// A total that is reached; the text is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Quota {
    /// Public and private rooms owned by one account.
    #[error("an account owns at most {0} rooms")]
    Rooms(u32),
    /// Devices registered by one account.
    #[error("an account has at most {0} devices")]
    Devices(u32),
    /// One-time KeyPackages held for one device.
    #[error("a device holds at most {0} one-time KeyPackages on the server")]
    KeyPackages(u32),
    /// Bytes of all KeyPackages held for one device.
    #[error("a device's KeyPackages take at most {0} bytes on the server")]
    KeyPackageBytes(u32),
}

impl Quota {
    /// The `kind` label of the refusal metric.
    fn kind(self) -> &'static str {
        match self {
            Self::Rooms(_) => "rooms",
            Self::Devices(_) => "devices",
            Self::KeyPackages(_) => "key_packages",
            Self::KeyPackageBytes(_) => "key_package_bytes",
        }
    }
}

/// The totals, as configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Totals {
    /// Public and private rooms one account may own.
    pub rooms: u32,
    /// Devices one account may register.
    pub devices: u32,
    /// One-time KeyPackages one device may hold.
    pub key_packages: u32,
    /// Bytes of KeyPackages (one-time and last-resort) one device may hold.
    pub key_package_bytes: u32,
}

/// The per-account rates and the per-user KeyPackage budgets, with the totals.
#[derive(Debug)]
pub(crate) struct Quotas {
    /// The configured totals.
    pub totals: Totals,
    /// Rooms created per account per minute (direct conversations included).
    rooms_created: KeyedLimiter<UserId>,
    /// Messages per account per minute.
    messages: KeyedLimiter<UserId>,
    /// Message bytes per account per minute.
    message_bytes: KeyedLimiter<UserId>,
    /// One-time KeyPackages of a user (the key) handed to their contacts per hour.
    contact_claims: KeyedLimiter<UserId>,
    /// One-time KeyPackages of a user (the key) handed to strangers per hour.
    stranger_claims: KeyedLimiter<UserId>,
    metrics: Arc<Metrics>,
}

impl Quotas {
    /// The bounds `config` sets.
    pub(crate) fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self {
            totals: Totals {
                rooms: config.max_rooms_per_account,
                devices: config.max_devices_per_account,
                key_packages: config.max_key_packages_per_device,
                key_package_bytes: config.max_key_package_bytes_per_device,
            },
            rooms_created: KeyedLimiter::new(config.rooms_per_minute),
            messages: KeyedLimiter::new(config.messages_per_minute),
            message_bytes: KeyedLimiter::new(config.message_bytes_per_minute),
            contact_claims: KeyedLimiter::per_hour(config.contact_key_package_claims_per_hour),
            stranger_claims: KeyedLimiter::per_hour(config.stranger_key_package_claims_per_hour),
            metrics,
        }
    }

    /// The error for a reached total, counted.
    pub(crate) fn exceeded(&self, quota: Quota) -> RequestError {
        self.metrics.quota_refused(quota.kind());
        RequestError::QuotaExceeded(quota)
    }

    /// Takes one room creation of `user`'s rate.
    ///
    /// # Errors
    /// `rate_limited` when the account created too many rooms this minute.
    pub(crate) fn create_room(&self, user: UserId) -> Result<(), RequestError> {
        if self.rooms_created.allow(&user) {
            Ok(())
        } else {
            self.metrics.quota_refused("rooms_created");
            Err(RequestError::TooFast("rooms created by this account"))
        }
    }

    /// Takes one message of `bytes` from `user`'s rates. The message count is
    /// checked first; a message refused for its bytes has used its count.
    ///
    /// # Errors
    /// `rate_limited` when the account sent too many messages or bytes this
    /// minute.
    pub(crate) fn send(&self, user: UserId, bytes: usize) -> Result<(), RequestError> {
        if !self.messages.allow(&user) {
            self.metrics.quota_refused("messages");
            return Err(RequestError::TooFast("messages from this account"));
        }
        // Sizes are at most MAX_MESSAGE_BYTES, and the setting is at least that.
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        if !self.message_bytes.allow_n(&user, bytes) {
            self.metrics.quota_refused("message_bytes");
            return Err(RequestError::TooFast("message bytes from this account"));
        }
        Ok(())
    }

    /// Whether a claim of `target`'s KeyPackages may take one-time packages:
    /// takes one from the target's budget for `contact`s (claimers who share a
    /// private or direct room with them, or the target themselves) or for
    /// everyone else. `false` means the claim gets last-resort packages only.
    pub(crate) fn one_time_claim(&self, target: UserId, contact: bool) -> bool {
        let budget = if contact { &self.contact_claims } else { &self.stranger_claims };
        let allowed = budget.allow(&target);
        if !allowed {
            self.metrics.quota_refused(if contact {
                "contact_key_package_claims"
            } else {
                "stranger_key_package_claims"
            });
        }
        allowed
    }

    /// Forgets idle keys of every limiter.
    pub(crate) fn purge(&self) {
        for limiter in [
            &self.rooms_created,
            &self.messages,
            &self.message_bytes,
            &self.contact_claims,
            &self.stranger_claims,
        ] {
            limiter.purge();
        }
    }
}
