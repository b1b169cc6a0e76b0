//! What the fuzz targets share: the server rig of the two request targets and
//! the invariants every answer of a session must keep.

use conclave_proto::{
    ClientFrame, ErrorCode, Outcome, Reply, Request, Response, ServerFrame,
    limits::{MAX_SERVER_FRAME_BYTES, MAX_UNAUTHENTICATED_FRAME_BYTES},
};
use conclave_server::fuzzing::{Answer, Phase, Rig};
use std::sync::LazyLock;

/// Most messages one input sends on its connection.
pub const MAX_MESSAGES: usize = 16;

/// One server for the whole fuzzing process, its data in a temporary
/// directory (`$TMPDIR`; `fuzz/run` points that at a scratch directory).
pub static RIG: LazyLock<Rig> = LazyLock::new(|| {
    let dir = tempfile::Builder::new().prefix("conclave-fuzz-").tempdir().expect("a temporary directory");
    // Kept for the life of the process (statics are never dropped).
    let dir = Box::leak(Box::new(dir));
    Rig::new(dir.path())
});

/// The messages of one input: one WebSocket text message per line. Text that
/// is not UTF-8 never reaches the session (the WebSocket layer closes the
/// connection with 1007), so such inputs send nothing.
pub fn messages(data: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(data).unwrap_or("").split('\n').filter(|m| !m.is_empty()).take(MAX_MESSAGES)
}

/// Checks what holds for every answer, whatever the phase: the response
/// carries the request's id, survives the trip to the client unchanged,
/// never reports a server fault, and the phase only moves forward, one
/// request at a time, as the state machine says.
///
/// # Panics
/// On a broken invariant: that is a finding.
pub fn check_answer(text: &str, answer: &Answer) {
    let Answer { response, before, after, ended } = answer;
    let limit = match before {
        Phase::ExpectHello | Phase::Anonymous => MAX_UNAUTHENTICATED_FRAME_BYTES,
        Phase::Authenticated { .. } => RIG.max_frame_bytes(),
    };
    let frame = ClientFrame::decode(text, limit).ok();
    if let Some(frame) = &frame {
        assert_eq!(response.id, frame.id, "the response carries the request's id");
    }
    round_trip(response);
    if let Outcome::Error(body) = &response.outcome {
        assert_ne!(body.code, ErrorCode::Internal, "a server fault: {}", body.message);
        assert_ne!(body.code, ErrorCode::Unknown, "a code the protocol does not name");
    }
    let request = frame.as_ref().map(|f| &f.request);
    let reply = match &response.outcome {
        Outcome::Ok(reply) => Some(reply),
        Outcome::Error(_) => None,
    };
    let code = match &response.outcome {
        Outcome::Error(body) => Some(body.code),
        Outcome::Ok(_) => None,
    };
    match before {
        Phase::ExpectHello => {
            // Nothing but a hello is answered with success, and only a hello
            // that succeeded moves on.
            assert!(matches!(reply, None | Some(Reply::Hello { .. })), "before hello: {reply:?}");
            let greeted = matches!(reply, Some(Reply::Hello { .. }));
            assert_eq!(*after, if greeted { Phase::Anonymous } else { Phase::ExpectHello });
            if let Some(request) = request
                && !matches!(request, Request::Hello { .. })
            {
                assert!(
                    matches!(code, Some(ErrorCode::HelloRequired | ErrorCode::RateLimited)),
                    "{} before hello: {code:?}",
                    request.name()
                );
            }
        }
        Phase::Anonymous => {
            let logged_in = matches!(
                reply,
                Some(Reply::Registered { .. } | Reply::LoggedIn { .. } | Reply::Authenticated { .. })
            );
            assert!(logged_in || matches!(reply, None | Some(Reply::Pong)), "before login: {reply:?}");
            let expected = if logged_in { Phase::Authenticated { device: false } } else { Phase::Anonymous };
            assert_eq!(*after, expected);
            match request {
                Some(Request::Hello { .. }) => {
                    assert!(matches!(code, Some(ErrorCode::AlreadyGreeted | ErrorCode::RateLimited)));
                }
                Some(
                    Request::Ping {}
                    | Request::Register { .. }
                    | Request::Login { .. }
                    | Request::Authenticate { .. },
                )
                | None => {}
                Some(other) => assert!(
                    matches!(code, Some(ErrorCode::NotAuthenticated | ErrorCode::RateLimited)),
                    "{} before login: {code:?}",
                    other.name()
                ),
            }
        }
        Phase::Authenticated { device } => {
            if ended.is_none() {
                let bound = *device || matches!(reply, Some(Reply::Device { .. }));
                assert_eq!(*after, Phase::Authenticated { device: bound }, "logged in stays logged in");
            }
            assert!(
                !matches!(code, Some(ErrorCode::HelloRequired | ErrorCode::NotAuthenticated)),
                "after login: {code:?}"
            );
            match request {
                Some(Request::Hello { .. }) => {
                    assert!(matches!(code, Some(ErrorCode::AlreadyGreeted | ErrorCode::RateLimited)));
                }
                Some(Request::Register { .. } | Request::Login { .. } | Request::Authenticate { .. }) => {
                    assert!(matches!(code, Some(ErrorCode::AlreadyAuthenticated | ErrorCode::RateLimited)));
                }
                _ => {}
            }
            if *device {
                assert_ne!(code, Some(ErrorCode::DeviceRequired), "a bound device is not required again");
            }
        }
    }
    if ended.is_some() {
        assert!(matches!(before, Phase::Authenticated { .. }), "only a logged-in session ends on a request");
    }
}

/// The response, as the client decodes it, is the response the server sent.
fn round_trip(response: &Response) {
    let frame = ServerFrame::Response(response.clone());
    let decoded =
        ServerFrame::decode(&frame.encode(), MAX_SERVER_FRAME_BYTES).expect("the client decodes it");
    assert_eq!(decoded, frame, "the response changed on its way to the client");
}
