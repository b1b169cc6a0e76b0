//! The terminal sanitizer every front end passes network text through.
//!
//! Its output holds no ESC, no other C0 or C1 control character except `\n`
//! and `\t`, no DEL, no bidirectional override or isolate, no carriage return
//! or Unicode line separator; sanitizing it again changes nothing; text with
//! nothing to strip comes back as it was. `single_line` keeps one line, and
//! every line `continued` adds starts with the continuation marker.
#![no_main]

use conclave_client::text::{CONTINUATION, continued, sanitize, single_line};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

fn forbidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let clean = sanitize(&text);
    if let Some(bad) = clean.chars().find(|&c| forbidden(c)) {
        panic!("sanitize left {bad:?} in {clean:?}");
    }
    assert_eq!(sanitize(&clean), clean, "sanitize is idempotent");
    assert!(matches!(sanitize(&clean), Cow::Borrowed(_)), "clean text is not copied");
    if !text.chars().any(forbidden) && !text.contains('\r') {
        assert_eq!(clean, text, "text with nothing to strip is unchanged");
    }
    assert!(clean.chars().count() <= text.chars().count(), "sanitize never adds characters");

    let one = single_line(&text);
    assert!(!one.contains('\n') && !one.chars().any(forbidden), "single_line: {one:?}");

    let shown = continued(&text);
    assert!(!shown.chars().any(forbidden));
    let marker = CONTINUATION.trim_end();
    for line in shown.split('\n').skip(1) {
        assert!(line.starts_with(marker), "a continued line without the marker: {line:?}");
    }
    assert_eq!(shown.split('\n').count(), clean.split('\n').count(), "continued adds no line");
});
