//! Copying a tool's output to the caller through the redactor, when the
//! call holds secrets. Blocking reads and writes: the tool is slowed to
//! the caller's pace (backpressure), and memory stays bounded.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::secrets::Redactor;

const CHUNK: usize = 64 * 1024;

/// Starts a thread copying `from` (the tool's pipe) to `to` (the shim's
/// descriptor), masking every form of the secrets. If the caller stops
/// reading, the rest is drained and dropped so the tool never blocks on a
/// reader that is gone.
pub fn start(
    redactor: Arc<Redactor>,
    from: OwnedFd,
    to: OwnedFd,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("cordon-redact".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut from = File::from(from);
            let mut to = File::from(to);
            let mut stream = redactor.stream();
            let mut buf = vec![0u8; CHUNK];
            let mut out = Vec::with_capacity(CHUNK * 2);
            let mut caller_gone = false;
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                out.clear();
                stream.push(&buf[..n], &mut out);
                if !caller_gone && to.write_all(&out).is_err() {
                    caller_gone = true;
                }
            }
            out.clear();
            stream.finish(&mut out);
            if !caller_gone {
                let _ = to.write_all(&out);
            }
            // The read buffer saw secrets in the clear: wipe it.
            zeroize::Zeroize::zeroize(&mut buf);
        })
}
