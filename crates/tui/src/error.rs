//! The one error type of the terminal UI.

/// Why `conclave chat` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The terminal could not be set up or drawn on (not a terminal?).
    #[error("terminal")]
    Terminal(#[from] std::io::Error),
    /// The client home could not be read.
    #[error(transparent)]
    Client(#[from] conclave_client::ClientError),
}
