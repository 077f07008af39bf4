//! Reading requests and writing replies on a broker connection.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use cordon_shim::protocol::{frame_length, DecodeError, Reply, Request};

use crate::sys::fd::recv_with_fds;

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed request: {0}")]
    Decode(#[from] DecodeError),
    #[error("{0} descriptor(s) sent with the request: cordon takes the caller's own stdin, stdout, stderr and working directory, and accepts none")]
    Fds(usize),
    #[error("descriptors must arrive with the first frame")]
    LateFds,
}

/// Descriptors collected from a frame at most (any is an error; more are
/// closed by the kernel).
const MAX_FDS: usize = 4;

/// Reads one frame, collecting descriptors sent with its first byte.
/// Reading stops at the header when it announces more than MAX_FRAME, so
/// a 4 GiB length costs nothing.
pub fn read_frame(stream: &mut UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>), WireError> {
    let mut header = [0u8; 4];
    let (mut got, fds) = recv_with_fds(stream.as_raw_fd(), &mut header, MAX_FDS)
        .map_err(|e| WireError::Io(e.into()))?;
    if got == 0 {
        return Err(WireError::Closed);
    }
    while got < header.len() {
        let n = stream.read(&mut header[got..])?;
        if n == 0 {
            return Err(WireError::Closed);
        }
        got += n;
    }
    let len = frame_length(header)?;
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Closed,
        _ => WireError::Io(e),
    })?;
    Ok((body, fds))
}

/// Reads the first request: an `Exec`, `Secret`, `Spawn` or `Mcp`, with
/// no descriptors (the caller's own are taken from it,
/// `serve::caller_fds`).
pub fn read_first(stream: &mut UnixStream) -> Result<Request, WireError> {
    let (body, fds) = read_frame(stream)?;
    let req = Request::decode(&body)?;
    if !fds.is_empty() {
        return Err(WireError::Fds(fds.len()));
    }
    Ok(req)
}

/// Reads a follow-up request (a cancel); descriptors here are an error.
pub fn read_followup(stream: &mut UnixStream) -> Result<Request, WireError> {
    let (body, fds) = read_frame(stream)?;
    if !fds.is_empty() {
        return Err(WireError::LateFds);
    }
    Ok(Request::decode(&body)?)
}

/// What a follow-up frame from a running call's shim means for the
/// process it waits on: a cancel stops it with that signal; anything
/// else is ignored; the shim gone (or speaking garbage) means nobody
/// waits any more.
pub fn control_event(stream: &mut UnixStream) -> crate::process::ControlEvent {
    use crate::process::ControlEvent;
    match read_followup(stream) {
        Ok(Request::Cancel { signal }) if (1..=64).contains(&signal) => ControlEvent::Stop(signal),
        Ok(_) => ControlEvent::Nothing,
        Err(_) => ControlEvent::Gone,
    }
}

/// Sends the final reply; a peer that went away is not an error worth
/// more than a log line.
pub fn send_reply(stream: &mut UnixStream, reply: &Reply) {
    match reply.encode() {
        Ok(frame) => {
            if let Err(e) = stream.write_all(&frame) {
                tracing::debug!(error = %e, "broker: the shim left before the reply");
            }
        }
        Err(e) => tracing::error!(error = %e, "broker: reply does not fit a frame"),
    }
}
