//! Talking to the broker as an agent might: raw and forged frames, a
//! forged shim, floods of connections.

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::{err, errno};

pub(crate) fn broker_socket() -> std::os::unix::net::UnixStream {
    let path =
        std::env::var_os("CORDON_SOCKET").expect("CORDON_SOCKET is set in a brokered session");
    std::os::unix::net::UnixStream::connect(path).expect("connect to the broker")
}

pub(crate) fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex bytes"))
        .collect()
}

/// Sends raw bytes to the broker (then waits `stall` seconds with the
/// connection open) and prints what came back: `reply <kind> <text>` or
/// `closed`.
pub(crate) fn send_raw(hex: &str, stall: u64) -> ExitCode {
    let mut s = broker_socket();
    let _ = s.write_all(&unhex(hex));
    std::thread::sleep(std::time::Duration::from_secs(stall));
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    if buf.len() < 5 {
        println!("closed");
    } else {
        println!(
            "reply {} {}",
            buf[4],
            String::from_utf8_lossy(&buf[5..]).escape_debug()
        );
    }
    ExitCode::SUCCESS
}

/// Opens `n` connections to the broker without sending anything, holds
/// them `secs` seconds, and prints how many connected.
pub(crate) fn flood(n: usize, secs: u64) -> ExitCode {
    let path = std::env::var_os("CORDON_SOCKET").expect("CORDON_SOCKET is set");
    let mut held = Vec::new();
    for _ in 0..n {
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    println!("opened {}", held.len());
    let _ = std::io::stdout().flush();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    drop(held);
    ExitCode::SUCCESS
}

/// Acts as a forged shim: `shim-call [--socket PATH] [--cwd DIR]
/// [--version N] [--with-fds] TOOL ARGS...` sends an exec request (cordon
/// takes this process's descriptors 0, 1, 2 and working directory;
/// `--with-fds` attaches 0, 1, 2 anyway, as SCM_RIGHTS), and prints the
/// reply as `reply <kind> <text>` (or `closed`).
pub(crate) fn shim_call(args: &[String]) -> ExitCode {
    use cordon_shim::protocol::{Reply, Request, VERSION};
    let mut socket = std::env::var_os("CORDON_SOCKET").unwrap_or_default();
    let mut version = VERSION;
    let mut with_fds = false;
    let mut rest = args;
    loop {
        match rest {
            [flag, value, tail @ ..] if flag == "--socket" => {
                socket = value.into();
                rest = tail;
            }
            [flag, value, tail @ ..] if flag == "--cwd" => {
                if let Err(e) = std::env::set_current_dir(value) {
                    return err(e.raw_os_error().unwrap_or(0));
                }
                rest = tail;
            }
            [flag, value, tail @ ..] if flag == "--version" => {
                version = value.parse().unwrap_or(0);
                rest = tail;
            }
            [flag, tail @ ..] if flag == "--with-fds" => {
                with_fds = true;
                rest = tail;
            }
            _ => break,
        }
    }
    let Some((tool, tool_args)) = rest.split_first() else {
        return ExitCode::from(2);
    };
    let mut s = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => return err(e.raw_os_error().unwrap_or(0)),
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let frame = Request::Exec {
        version,
        tool: tool.as_bytes().to_vec(),
        args: tool_args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: cwd.to_string_lossy().as_bytes().to_vec(),
        env: Vec::new(),
    }
    .encode()
    .expect("a small request encodes");
    // A refusal that needs no request (a foreign peer) may already have
    // come, and the connection closed (EPIPE): the reply is still there.
    let sent = if with_fds {
        use std::os::fd::AsRawFd;
        send_with_fds(s.as_raw_fd(), &frame, &[0, 1, 2])
    } else {
        s.write_all(&frame)
    };
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    if let (Err(e), None | Some(Err(_))) = (&sent, buf.get(4..).map(Reply::decode)) {
        return err(e.raw_os_error().unwrap_or(0));
    }
    match buf.get(4..).map(Reply::decode) {
        Some(Ok(Reply::Denied { reason })) => println!("reply 16 {reason}"),
        Some(Ok(Reply::Exited { code })) => println!("reply 17 {code}"),
        Some(Ok(Reply::Signaled { signal })) => println!("reply 18 {signal}"),
        Some(Ok(Reply::Error { message })) => println!("reply 19 {message}"),
        Some(Ok(Reply::Value { .. })) => println!("reply 20 (a value)"),
        _ => println!("closed"),
    }
    ExitCode::SUCCESS
}

/// `cordon-shim secret NAME` without the shim: prints the reply kind, and
/// the value only as its length.
pub(crate) fn shim_secret(name: &str) -> ExitCode {
    use cordon_shim::protocol::{Reply, Request, VERSION};
    let mut s = broker_socket();
    let frame = Request::Secret {
        version: VERSION,
        name: name.as_bytes().to_vec(),
    }
    .encode()
    .expect("a small request encodes");
    let _ = s.write_all(&frame);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    match buf.get(4..).map(Reply::decode) {
        Some(Ok(Reply::Denied { reason })) => println!("reply 16 {reason}"),
        Some(Ok(Reply::Value { value })) => println!("reply 20 {} bytes", value.len()),
        Some(Ok(other)) => println!("reply {other:?}"),
        _ => println!("closed"),
    }
    ExitCode::SUCCESS
}

pub(crate) fn send_with_fds(sock: i32, bytes: &[u8], fds: &[i32]) -> std::io::Result<()> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            fd_bytes as usize,
        );
    }
    // The frame is small: one sendmsg carries it whole.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends raw bytes to the broker with four descriptors (0, 1, 2, 0)
/// attached, as a shim's first frame carries, and prints the reply like
/// `send-raw`.
pub(crate) fn send_raw_fds(hex: &str) -> ExitCode {
    use std::os::fd::AsRawFd;
    let mut s = broker_socket();
    let data = unhex(hex);
    let fds: [libc::c_int; 4] = [0, 1, 2, 0];
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(&fds) as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&fds) as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
    }
    if unsafe { libc::sendmsg(s.as_raw_fd(), &msg, 0) } < 0 {
        return err(errno());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    if buf.len() < 5 {
        println!("closed");
    } else {
        println!(
            "reply {} {}",
            buf[4],
            String::from_utf8_lossy(&buf[5..]).escape_debug()
        );
    }
    ExitCode::SUCCESS
}

/// Connects to the Unix socket at `path`, sends `line` and a newline, and
/// prints `reply <what came back>` or `err <errno>` if it cannot connect.
pub(crate) fn unix_send(path: &str, line: &str) -> ExitCode {
    let mut s = match std::os::unix::net::UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => return err(e.raw_os_error().unwrap_or(0)),
    };
    let _ = s.write_all(format!("{line}\n").as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    println!("reply {}", String::from_utf8_lossy(&buf).trim_end());
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}
