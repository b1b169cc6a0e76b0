//! Frame decoding as both sides do it, and the input rules of `validate`.
//!
//! Any text becomes a [`ClientFrame`] (at the limits before and after login)
//! and a [`ServerFrame`] (as the client reads them), or a typed error. What
//! decodes re-encodes to text that decodes to the same frame; a malformed
//! frame keeps the id it had; the validators give canonical forms that
//! validate again to themselves.
#![no_main]

use conclave_proto::{
    ClientFrame, FrameError, Request, ServerFrame,
    limits::{MAX_FRAME_BYTES, MAX_SERVER_FRAME_BYTES, MAX_UNAUTHENTICATED_FRAME_BYTES},
    validate,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A text message that is not UTF-8 never reaches the decoder: the
    // WebSocket layer closes the connection (1007) first.
    let Ok(text) = std::str::from_utf8(data) else { return };
    for max in [MAX_UNAUTHENTICATED_FRAME_BYTES, MAX_FRAME_BYTES] {
        client_frame(text, max);
    }
    server_frame(text);
    rules(text);
});

fn client_frame(text: &str, max: usize) {
    match ClientFrame::decode(text, max) {
        Ok(frame) => {
            let again = ClientFrame::decode(&frame.encode(), usize::MAX).expect("a frame re-decodes");
            assert_eq!(again, frame, "decode -> encode -> decode changed the frame");
            let _ = frame.request.name();
            request_rules(&frame.request);
        }
        Err(FrameError::TooLarge { len, max: limit }) => {
            assert!(len > limit && limit == max && len == text.len());
        }
        Err(FrameError::Malformed { id, .. }) => {
            // The id, when given, is the one the text carries: its `id` field
            // (or, as serde reads a struct from an array too, its first element).
            // The id is read skipping the other fields unchecked (a lone
            // surrogate escape in one does not stop it), so only text that is
            // JSON throughout is compared.
            if let Some(id) = id
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
            {
                let carried = match &value {
                    serde_json::Value::Array(items) => items.first(),
                    other => other.get("id"),
                };
                assert_eq!(carried.and_then(serde_json::Value::as_u64), Some(id));
            }
        }
    }
}

fn server_frame(text: &str) {
    let Ok(frame) = ServerFrame::decode(text, MAX_SERVER_FRAME_BYTES) else { return };
    let again = ServerFrame::decode(&frame.encode(), usize::MAX).expect("a server frame re-decodes");
    assert_eq!(again, frame, "decode -> encode -> decode changed the server frame");
    // The client's own entry point agrees.
    assert_eq!(conclave_client::decode_server_frame(text).ok(), Some(frame));
}

/// The validators on the strings a request carries.
fn request_rules(request: &Request) {
    match request {
        Request::Hello { client, .. } => {
            let _ = validate::is_client_name(client);
        }
        Request::Register { username, registration_token, totp_code, .. } => {
            rules(username);
            rules(totp_code);
            if let Some(token) = registration_token {
                rules(token);
            }
        }
        Request::Login { username, device_cookie, .. } => {
            rules(username);
            if let Some(cookie) = device_cookie {
                rules(cookie);
            }
        }
        Request::Authenticate { token } => rules(token),
        Request::CreateRoom { name, .. } | Request::FindRoom { name } => rules(name),
        Request::OpenDirect { username } => rules(username),
        Request::ClaimKeyPackages { users } => users.iter().for_each(|u| rules(u)),
        _ => {}
    }
}

fn rules(text: &str) {
    if let Ok(name) = validate::normalize_username(text) {
        assert_eq!(validate::normalize_username(&name).as_deref(), Ok(name.as_str()), "canonical username");
        assert!(name.len() <= conclave_proto::limits::USERNAME_MAX_CHARS);
    }
    if validate::is_room_name(text) {
        assert!(text.bytes().all(|b| b.is_ascii_graphic()));
    }
    if validate::is_totp_code(text) {
        assert_eq!(text.len(), conclave_proto::limits::TOTP_DIGITS);
    }
    if let Some(code) = validate::normalize_recovery_code(text) {
        assert_eq!(
            validate::normalize_recovery_code(&code).as_deref(),
            Some(code.as_str()),
            "canonical code"
        );
    }
    if validate::is_token_shape(text) {
        assert!(!text.is_empty() && text.is_ascii());
    }
    if let Some((id, secret)) = validate::split_registration_token(text) {
        let joined = format!("{id}-{secret}");
        assert_eq!(validate::split_registration_token(&joined), Some((id, secret)), "canonical token");
    }
    if validate::is_client_name(text) {
        assert!(!text.chars().any(char::is_control));
    }
}
