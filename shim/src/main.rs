//! cordon-shim: runs as `git`, `cargo`, ... inside the agent's sandbox and
//! asks the supervisor to run the real tool. No policy lives here.
//!
//! Exit status: the tool's; 128+N when the tool died of signal N; 126 with
//! one line `cordon: denied: <reason>` when the call is refused.

mod sys;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use cordon_shim::protocol::{frame_length, Reply, Request, VERSION};

/// The environment variable that names the session's broker socket.
const SOCKET_VAR: &str = "CORDON_SOCKET";

fn denied(reason: impl std::fmt::Display) -> ExitCode {
    // One line: a reason never spans lines.
    let reason = reason.to_string().replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "cordon: denied: {reason}");
    ExitCode::from(126)
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if argv.is_empty() {
        return denied("no argv[0]: cannot tell which tool was asked for");
    }
    let invoked = argv.remove(0);
    let tool = std::path::Path::new(&invoked)
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let Some(socket) = std::env::var_os(SOCKET_VAR) else {
        return denied(format_args!(
            "{SOCKET_VAR} is not set: this tool only runs inside a cordon session"
        ));
    };
    if tool == b"cordon-shim" {
        return match argv.as_slice() {
            [verb, name] if verb == "secret" => match secret(&socket, name.as_bytes()) {
                Ok(code) => code,
                Err(e) => denied(format_args!("cannot reach the cordon supervisor: {e}")),
            },
            [verb, name] if verb == "mcp" => {
                let request = Request::Mcp {
                    version: VERSION,
                    server: name.as_bytes().to_vec(),
                    cwd: current_dir(),
                    env: std::env::vars_os()
                        .map(|(k, v)| (k.into_vec(), v.into_vec()))
                        .collect(),
                };
                match call(&socket, request) {
                    Ok(code) => code,
                    Err(e) => denied(format_args!("cannot reach the cordon supervisor: {e}")),
                }
            }
            [verb, rest @ ..] if verb == "spawn" => match spawn_request(rest) {
                Ok(request) => match call(&socket, request) {
                    Ok(code) => code,
                    Err(e) => denied(format_args!("cannot reach the cordon supervisor: {e}")),
                },
                Err(why) => {
                    let _ = writeln!(std::io::stderr(), "cordon-shim spawn: {why}\n{USAGE}");
                    ExitCode::from(2)
                }
            },
            _ => {
                let _ = writeln!(
                    std::io::stderr(),
                    "{USAGE}\n(run as a tool, cordon-shim stands in for it through a link named after the tool, which cordon puts on the agent's PATH)"
                );
                ExitCode::from(2)
            }
        };
    }
    let request = Request::Exec {
        version: VERSION,
        tool,
        args: argv.into_iter().map(OsString::into_vec).collect(),
        cwd: current_dir(),
        env: std::env::vars_os()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
    };
    match call(&socket, request) {
        Ok(code) => code,
        Err(e) => denied(format_args!("cannot reach the cordon supervisor: {e}")),
    }
}

/// `cordon-shim secret NAME`: prints the value of a secret the profile
/// exposes to the agent (`expose = true`); every such access is recorded.
fn secret(socket: &OsString, name: &[u8]) -> std::io::Result<ExitCode> {
    let mut stream = UnixStream::connect(socket)?;
    let frame = (Request::Secret {
        version: VERSION,
        name: name.to_vec(),
    })
    .encode()
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    stream.write_all(&frame)?;
    Ok(match read_reply(&mut stream) {
        Ok(Reply::Value { value }) => {
            std::io::stdout().write_all(&value)?;
            ExitCode::SUCCESS
        }
        Ok(Reply::Denied { reason }) | Ok(Reply::Error { message: reason }) => denied(reason),
        Ok(other) => denied(format_args!("unexpected answer {other:?}")),
        Err(e) => denied(format_args!("no answer from the cordon supervisor: {e}")),
    })
}

const USAGE: &str = "usage: cordon-shim secret NAME\n       cordon-shim mcp SERVER   (an MCP server over stdio, as [mcp.SERVER] of the profile)\n       cordon-shim spawn --profile FILE [--intent TEXT] -- CMD [ARGS...]";

/// The largest sub-agent profile sent.
const MAX_PROFILE: u64 = 256 * 1024;

fn current_dir() -> Vec<u8> {
    std::env::current_dir()
        .map(|p| p.into_os_string().into_vec())
        .unwrap_or_default()
}

/// `spawn --profile FILE [--intent TEXT] -- CMD [ARGS...]`. The profile is
/// read here, inside the sandbox, so the agent can only name a file it may
/// read itself.
fn spawn_request(args: &[OsString]) -> Result<Request, String> {
    let (mut profile, mut intent, mut rest) = (None, Vec::new(), args);
    loop {
        match rest {
            [flag, value, more @ ..] if flag == "--profile" => {
                profile = Some(value.clone());
                rest = more;
            }
            [flag, value, more @ ..] if flag == "--intent" => {
                intent = value.as_bytes().to_vec();
                rest = more;
            }
            [dashes, command @ ..] if dashes == "--" && !command.is_empty() => {
                rest = command;
                break;
            }
            _ => return Err("expected --profile FILE, then -- and a command".into()),
        }
    }
    let path = profile.ok_or("--profile FILE is required")?;
    let mut text = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_PROFILE + 1).read_to_end(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", path.to_string_lossy()))?;
    if text.len() as u64 > MAX_PROFILE {
        return Err(format!("{} is larger than 256 KiB", path.to_string_lossy()));
    }
    Ok(Request::Spawn {
        version: VERSION,
        name: path.into_vec(),
        profile: text,
        intent,
        argv: rest.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: current_dir(),
    })
}

fn call(socket: &OsString, request: Request) -> std::io::Result<ExitCode> {
    let signals = sys::stop_signals()?;
    let mut stream = UnixStream::connect(socket)?;
    let frame = match request.encode() {
        Ok(f) => f,
        Err(e) => return Ok(denied(format_args!("request too large: {e}"))),
    };
    // Only bytes: cordon takes this process's stdin, stdout, stderr and
    // working directory for the call itself.
    if let Err(e) = stream.write_all(&frame) {
        // A refusal that needs no request (a peer from another session)
        // may have come and the connection closed before the request went
        // out: report the supervisor's answer, not the broken pipe.
        return Ok(match read_reply(&mut stream) {
            Ok(Reply::Denied { reason }) | Ok(Reply::Error { message: reason }) => denied(reason),
            _ => return Err(e),
        });
    }
    loop {
        let [sock_ready, sig_ready] =
            sys::wait_readable(&[stream.as_raw_fd(), signals.as_raw_fd()])?;
        if sig_ready {
            let signal = sys::read_signal(signals.as_raw_fd())?;
            if let Ok(f) = (Request::Cancel { signal }).encode() {
                // The supervisor may already have closed; its reply decides.
                let _ = stream.write_all(&f);
            }
        }
        if sock_ready {
            return Ok(match read_reply(&mut stream) {
                Ok(Reply::Exited { code }) => {
                    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(u8::MAX))
                }
                Ok(Reply::Signaled { signal }) => {
                    ExitCode::from(u8::try_from(128 + (signal & 0x7f)).unwrap_or(u8::MAX))
                }
                Ok(Reply::Denied { reason }) => denied(reason),
                Ok(Reply::Error { message }) => denied(message),
                Ok(Reply::Value { .. }) => denied("unexpected answer to a tool call"),
                Err(e) => denied(format_args!("no answer from the cordon supervisor: {e}")),
            });
        }
    }
}

fn read_reply(stream: &mut UnixStream) -> std::io::Result<Reply> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let len = frame_length(header)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body)?;
    Reply::decode(&body).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
