//! Credentials: password hashing and policy, TOTP, recovery codes, session
//! tokens, secrets at rest and attempt limits.
//!
//! Every comparison of a secret in the server happens in this module, in
//! constant time (argon2's verifier, `subtle`).
//!
//! # Layout
//! * `password` — argon2id hashing on a bounded pool of blocking threads.
//! * `policy` — the password policy and its reasons for refusal.
//! * `totp` — RFC 6238 code checks.
//! * `token` — session tokens, session ids and recovery codes.
//! * `secretbox` — the key that encrypts TOTP secrets at rest.
//! * `ratelimit` — per-address and per-connection rate limits, account back-off.

pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod secretbox;
pub mod token;
pub mod totp;
