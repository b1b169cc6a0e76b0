//! The server's handling of a logged-in connection's messages: each input
//! gets a fresh connection that has sent `hello`, `authenticate` (alice's live
//! session) and `device` (her device) through the real requests, then one
//! text message per line of the input, answered by the real session and
//! handlers on a real server (SQLite store in a temporary directory).
//!
//! The session stays logged in (until `logout` or revoking itself), hello and
//! logging in again are refused, and no request is answered with a server
//! fault. The store keeps what earlier inputs did (rooms, KeyPackages).
#![no_main]

use conclave_fuzz::{RIG, check_answer, messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = RIG.authenticated();
    for text in messages(data) {
        let answer = session.answer(text);
        check_answer(text, &answer);
        if session.ended() {
            break;
        }
    }
});
