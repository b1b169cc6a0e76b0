//! Credentials: password hashing and policy, TOTP, recovery codes, session
//! tokens, secrets at rest and attempt limits.
//!
//! Every comparison of a secret in the server happens in this module, in
//! constant time (argon2's verifier, `subtle`).
//!
//! # Layout
//! * `password` — argon2id hashing on a bounded pool of blocking threads.
//! * `policy` — what a password is (NFC, bounded, no NUL) and the policy for
//!   new ones.
//! * `totp` — RFC 6238 code checks.
//! * `token` — session tokens, session ids, recovery codes, device cookies and
//!   registration tokens.
//! * `secretbox` — the key that encrypts TOTP secrets at rest.
//! * `ratelimit` — per-address and per-connection rate limits.
//! * `lockout` — which login attempts are judged: account and device back-off,
//!   the hourly cap.

pub mod lockout;
pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod secretbox;
pub mod token;
pub mod totp;
