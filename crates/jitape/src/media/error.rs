//! The media stage's errors, grouped by whose fault they are.

/// Everything that can go wrong bringing up or renegotiating a media session.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Malformed input: the offer (from Jicofo/JVB) has a value we cannot use or that would
    /// corrupt the SDP we derive from it.
    #[error("malformed offer: {0}")]
    InvalidOffer(String),
    /// Unsupported: a well-formed offer asks for something jitape does not do.
    #[error("unsupported offer: {0}")]
    Unsupported(String),
    /// The network or the peer did not do its part in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// webrtc-rs refused an operation (socket bind, SDP it rejects, a closed connection).
    #[error("webrtc-rs failed to {op}: {source}")]
    Stack {
        op: &'static str,
        #[source]
        source: webrtc::error::Error,
    },
    /// Our bug: the stack produced something we did not expect.
    #[error("internal media error: {0}")]
    Internal(String),
}

impl MediaError {
    pub(crate) fn stack(op: &'static str) -> impl FnOnce(webrtc::error::Error) -> Self {
        move |source| Self::Stack { op, source }
    }
}
