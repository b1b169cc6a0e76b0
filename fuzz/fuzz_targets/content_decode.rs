//! The client's decoding of what a decrypted application message holds.
//!
//! Any bytes decode to a [`Content`] or to nothing; what decodes re-encodes to
//! bytes that decode to the same content, and its display text survives the
//! terminal sanitizer (no control characters left).
#![no_main]

use conclave_client::{
    content::Content,
    text::{continued, sanitize, single_line},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(content) = Content::decode(data) else { return };
    let encoded = content.encode();
    assert!(!encoded.is_empty(), "a content always encodes");
    assert_eq!(Content::decode(&encoded).as_ref(), Some(&content), "decode -> encode -> decode changed it");
    let shown = content.display_text();
    let clean = sanitize(&shown);
    assert!(!clean.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    assert!(!single_line(&shown).contains('\n'));
    let _ = continued(&shown);
});
