//! The server's handling of a new connection's messages, from its first: one
//! text message per line of the input, answered by a real session on a real
//! server (SQLite store in a temporary directory) as its loop answers them.
//!
//! Before `hello` nothing else succeeds; before login nothing but `ping`,
//! `register`, `login` and `authenticate` is served; the phase only moves
//! forward on a success. `@TOKEN@` in a message stands for a live session
//! token, so inputs can log in with `authenticate` and go on.
#![no_main]

use conclave_fuzz::{RIG, check_answer, messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = RIG.session();
    for text in messages(data) {
        let answer = session.answer(text);
        check_answer(text, &answer);
        if session.ended() {
            break;
        }
    }
});
