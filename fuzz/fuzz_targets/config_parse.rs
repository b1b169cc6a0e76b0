//! The server's configuration: a TOML file's text parsed as `conclave serve`
//! reads it ([`RawConfig::from_toml`]), then merged and validated
//! ([`Config::resolve`]).
//!
//! Parsing and validating never panic; the same settings validate alike given
//! as the file or as the flags layer, and a validated configuration validates
//! again to the same one.
#![no_main]

use conclave_server::{Config, RawConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(raw) = RawConfig::from_toml(text) else { return };
    let as_file = Config::resolve(raw.clone(), RawConfig::default());
    let as_flags = Config::resolve(RawConfig::default(), raw.clone());
    match (&as_file, &as_flags) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "file and flags layers differ"),
        (Err(a), Err(b)) => assert_eq!(a.0, b.0),
        _ => panic!("one layer validates and the other does not: {as_file:?} / {as_flags:?}"),
    }
    if let Ok(config) = as_file {
        // The same layer on both sides resolves to the same configuration.
        let again = Config::resolve(raw.clone(), raw).expect("a valid configuration validates again");
        assert_eq!(format!("{again:?}"), format!("{config:?}"));
    }
});
