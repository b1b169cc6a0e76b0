use super::*;
use crate::{
    event::SessionEndReason,
    request::SecondFactor,
    response::{ErrorCode, Reply},
};

#[test]
fn client_frames_round_trip() {
    let frame = ClientFrame {
        id: 7,
        request: Request::Login {
            username: "alice".into(),
            password: "pw".into(),
            second_factor: SecondFactor::Totp("123456".into()),
            device_cookie: None,
        },
    };
    let text = frame.encode();
    assert_eq!(
        text,
        r#"{"id":7,"request":{"type":"login","username":"alice","password":"pw","second_factor":{"kind":"totp","code":"123456"}}}"#
    );
    assert_eq!(ClientFrame::decode(&text, DEFAULT_MAX).unwrap(), frame);
    let unit = ClientFrame { id: 1, request: Request::Ping {} };
    assert_eq!(unit.encode(), r#"{"id":1,"request":{"type":"ping"}}"#);
}

#[test]
fn server_frames_round_trip() {
    let ok = ServerFrame::Response(Response::ok(3, Reply::Pong));
    assert_eq!(ok.encode(), r#"{"kind":"response","id":3,"ok":{"type":"pong"}}"#);
    assert_eq!(ServerFrame::decode(&ok.encode(), DEFAULT_MAX).unwrap(), ok);

    let err = ServerFrame::Response(Response::error(4, ErrorCode::AuthFailed, "nope"));
    assert_eq!(err.encode(), r#"{"kind":"response","id":4,"error":{"code":"auth_failed","message":"nope"}}"#);
    assert_eq!(ServerFrame::decode(&err.encode(), DEFAULT_MAX).unwrap(), err);

    let event = ServerFrame::Event { event: Event::SessionEnded { reason: SessionEndReason::Revoked } };
    assert_eq!(event.encode(), r#"{"kind":"event","event":{"type":"session_ended","reason":"revoked"}}"#);
    assert_eq!(ServerFrame::decode(&event.encode(), DEFAULT_MAX).unwrap(), event);
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let text =
        format!(r#"{{"id":1,"request":{{"type":"hello","versions":[1],"client":"{}"}}}}"#, "x".repeat(100));
    assert_eq!(ClientFrame::decode(&text, 50), Err(FrameError::TooLarge { len: text.len(), max: 50 }));
}

#[test]
fn malformed_frames_keep_their_id_when_readable() {
    let unknown_type = r#"{"id":9,"request":{"type":"launch_missiles"}}"#;
    match ClientFrame::decode(unknown_type, DEFAULT_MAX) {
        Err(FrameError::Malformed { id: Some(9), reason }) => assert!(reason.contains("launch_missiles")),
        other => panic!("unexpected {other:?}"),
    }
    let unknown_field = r#"{"id":10,"request":{"type":"ping","extra":1}}"#;
    assert!(matches!(
        ClientFrame::decode(unknown_field, DEFAULT_MAX),
        Err(FrameError::Malformed { id: Some(10), .. })
    ));
    let trailing = r#"{"id":11,"request":{"type":"ping"}} {}"#;
    assert!(matches!(ClientFrame::decode(trailing, DEFAULT_MAX), Err(FrameError::Malformed { .. })));
    assert!(matches!(
        ClientFrame::decode("not json", DEFAULT_MAX),
        Err(FrameError::Malformed { id: None, .. })
    ));
}

#[test]
fn unknown_codes_and_events_from_newer_servers_still_decode() {
    let error = r#"{"kind":"response","id":2,"error":{"code":"from_v9","message":"m","hint":1}}"#;
    match ServerFrame::decode(error, DEFAULT_MAX).unwrap() {
        ServerFrame::Response(Response { outcome: crate::Outcome::Error(body), .. }) => {
            assert_eq!(body.code, ErrorCode::Unknown);
        }
        other => panic!("unexpected {other:?}"),
    }
    let event = r#"{"kind":"event","event":{"type":"room_renamed","room":"x"}}"#;
    assert_eq!(
        ServerFrame::decode(event, DEFAULT_MAX).unwrap(),
        ServerFrame::Event { event: Event::Unknown }
    );
}

#[test]
fn the_fields_added_for_device_cookies_and_registration_are_optional() {
    let old_login = r#"{"id":2,"request":{"type":"login","username":"a","password":"p","second_factor":{"kind":"totp","code":"1"}}}"#;
    let ClientFrame { request: Request::Login { device_cookie, .. }, .. } =
        ClientFrame::decode(old_login, DEFAULT_MAX).unwrap()
    else {
        panic!("not a login")
    };
    assert_eq!(device_cookie, None);
    let old_hello =
        r#"{"kind":"response","id":1,"ok":{"type":"hello","version":1,"server":"conclave/0.0.1"}}"#;
    let ServerFrame::Response(Response { outcome: crate::Outcome::Ok(reply), .. }) =
        ServerFrame::decode(old_hello, DEFAULT_MAX).unwrap()
    else {
        panic!("not a response")
    };
    assert!(matches!(reply, Reply::Hello { registration: crate::RegistrationMode::Open, .. }), "{reply:?}");
    let invite = ServerFrame::Response(Response::ok(
        1,
        Reply::Hello {
            version: 1,
            server: "conclave".into(),
            max_frame_bytes: 4096,
            registration: crate::RegistrationMode::Invite,
        },
    ));
    assert!(invite.encode().contains(r#""registration":"invite""#), "{}", invite.encode());
}
