//! Network escapes and the egress proxy's client side: sockets the
//! sandbox must refuse, raw requests to the proxy, and the egress benchmark
//! (a sink server outside, a client inside).

use std::io::Write;
use std::process::ExitCode;

use crate::{err, report};

/// `socket KIND`: creates a socket of a family or type the sandbox should
/// refuse (it is never used; creating it is the escape).
pub(crate) fn raw_socket(kind: &str) -> ExitCode {
    let (family, ty, proto) = match kind {
        "raw" => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "raw6" => (libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
        "packet" => (libc::AF_PACKET, libc::SOCK_RAW, 0x0300), // htons(ETH_P_ALL)
        "vsock" => (libc::AF_VSOCK, libc::SOCK_STREAM, 0),
        "udp" => (libc::AF_INET, libc::SOCK_DGRAM, 0),
        "udp6" => (libc::AF_INET6, libc::SOCK_DGRAM, 0),
        "sctp" => (libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP),
        "mptcp" => (libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_MPTCP),
        "netlink-audit" => (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT),
        other => {
            eprintln!("unknown socket kind {other}");
            return ExitCode::from(2);
        }
    };
    report(unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, proto) }.into())
}

/// `sink PORT`: a server for the egress benchmark on 127.0.0.1. Each
/// connection sends one request line, `bytes N` (answered with N bytes)
/// or `ping` (answered with one byte, repeatedly, until the client closes).
pub(crate) fn sink(port: &str) -> ExitCode {
    use std::io::{BufRead, BufReader};
    let listener = match std::net::TcpListener::bind(("127.0.0.1", port.parse().unwrap_or(0))) {
        Ok(l) => l,
        Err(e) => return err(e.raw_os_error().unwrap_or(0)),
    };
    println!(
        "ready {}",
        listener.local_addr().map(|a| a.port()).unwrap_or(0)
    );
    let _ = std::io::stdout().flush();
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let mut w = &conn;
                if let Some(n) = line.trim().strip_prefix("bytes ") {
                    let mut left: u64 = n.parse().unwrap_or(0);
                    let chunk = vec![0x5au8; 256 * 1024];
                    while left > 0 {
                        let k = left.min(chunk.len() as u64) as usize;
                        if w.write_all(&chunk[..k]).is_err() {
                            return;
                        }
                        left -= k as u64;
                    }
                    return;
                }
                if w.write_all(b"p").is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
    ExitCode::SUCCESS
}

/// Opens a connection to `host:port`: through the proxy in `HTTPS_PROXY`
/// (a CONNECT tunnel) when it is set, else directly.
fn open_tunnel(host: &str, port: u16) -> std::io::Result<std::net::TcpStream> {
    use std::io::Read;
    let Some(proxy) = std::env::var("HTTPS_PROXY").ok() else {
        let s = std::net::TcpStream::connect((host, port))?;
        let _ = s.set_nodelay(true);
        return Ok(s);
    };
    let addr = proxy.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr)?;
    let _ = s.set_nodelay(true);
    write!(
        s,
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
    )?;
    // Read the answer's head byte by byte: nothing past it may be consumed.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 || head.len() > 4096 {
            return Err(std::io::ErrorKind::ConnectionAborted.into());
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(s)
}

/// `egress-bench HOST PORT MIB ROUNDS`: downloads MIB MiB from the sink
/// (throughput), then times ROUNDS fresh connections to their first byte
/// (connect, tunnel, one round trip). Prints both.
pub(crate) fn egress_bench(args: &[String]) -> ExitCode {
    use std::io::Read;
    use std::time::Instant;
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let (host, port) = (a(0), a(1).parse::<u16>().unwrap_or(0));
    let mib: u64 = a(2).parse().unwrap_or(1024);
    let rounds: usize = a(3).parse().unwrap_or(200);
    let run = || -> std::io::Result<(f64, Vec<f64>)> {
        let mut s = open_tunnel(host, port)?;
        let want = mib * 1024 * 1024;
        let started = Instant::now();
        writeln!(s, "bytes {want}")?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < want {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            got += n as u64;
        }
        let rate = got as f64 / started.elapsed().as_secs_f64();
        let mut ttfb = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let mut s = open_tunnel(host, port)?;
            s.write_all(b"ping\n")?;
            let mut one = [0u8; 1];
            s.read_exact(&mut one)?;
            ttfb.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ttfb.sort_by(f64::total_cmp);
        Ok((rate, ttfb))
    };
    match run() {
        Ok((rate, ttfb)) => {
            let pct = |p: f64| ttfb[((ttfb.len() - 1) as f64 * p) as usize];
            println!(
                "throughput {:.2} GB/s  ttfb median {:.3} ms  p90 {:.3} ms",
                rate / 1e9,
                pct(0.5),
                pct(0.9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("egress-bench failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// The proxy named by `HTTPS_PROXY`, connected.
fn proxy_stream() -> std::io::Result<std::net::TcpStream> {
    let proxy = std::env::var("HTTPS_PROXY").map_err(|_| std::io::ErrorKind::NotFound)?;
    std::net::TcpStream::connect(proxy.trim_start_matches("http://").trim_end_matches('/'))
}

/// `proxy-raw BYTES`: sends BYTES to the proxy as they are and prints its
/// whole answer.
pub(crate) fn proxy_raw(raw: &[u8]) -> ExitCode {
    use std::io::Read;
    let run = || -> std::io::Result<Vec<u8>> {
        let mut s = proxy_stream()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))?;
        s.write_all(raw)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        Ok(answer)
    };
    match run() {
        Ok(a) => {
            let _ = std::io::stdout().write_all(&a);
            ExitCode::SUCCESS
        }
        Err(e) => err(e.raw_os_error().unwrap_or(0)),
    }
}

/// `proxy-stall SECONDS`: sends half a request head, then holds the
/// connection silent.
pub(crate) fn proxy_stall(seconds: u64) -> ExitCode {
    match proxy_stream().and_then(|mut s| {
        s.write_all(b"CONNECT localh")?;
        std::thread::sleep(std::time::Duration::from_secs(seconds));
        Ok(())
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => err(e.raw_os_error().unwrap_or(0)),
    }
}

/// `connect-race ALLOWED DENIED N`: connects N times to 127.0.0.1:ALLOWED
/// from one sockaddr buffer while another thread keeps flipping its port
/// to DENIED (the address the supervisor checks and the one the kernel
/// would read again). Prints how many connects succeeded.
pub(crate) fn connect_race(allowed: u16, denied: u16, n: usize) -> ExitCode {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    // SAFETY: sockaddr_in is plain data.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    sa.sin_port = allowed.to_be();
    let sa = Box::leak(Box::new(sa));
    let port = std::ptr::addr_of_mut!(sa.sin_port) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let p = port as *mut u16;
            while !stop.load(Relaxed) {
                // SAFETY: the leaked sockaddr lives for the whole process;
                // racing writes to it are the point of this probe.
                unsafe {
                    std::ptr::write_volatile(p, denied.to_be());
                    std::ptr::write_volatile(p, allowed.to_be());
                }
            }
        })
    };
    let ok = connect_many(libc::AF_INET, sa as *const libc::sockaddr_in, n);
    stop.store(true, Relaxed);
    let _ = flipper.join();
    println!("connected {ok} of {n}");
    ExitCode::SUCCESS
}

/// `unix-connect-race ALLOWED DENIED N`: like `connect-race`, for two
/// pathname Unix sockets whose paths have the same length: another thread
/// keeps rewriting the address between them.
pub(crate) fn unix_connect_race(allowed: &str, denied: &str, n: usize) -> ExitCode {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    let (a, d) = (allowed.as_bytes().to_vec(), denied.as_bytes().to_vec());
    if a.len() != d.len() || a.len() >= 108 {
        eprintln!("the paths must have one length, under 108 bytes");
        return ExitCode::from(2);
    }
    // SAFETY: sockaddr_un is plain data.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in a.iter().enumerate() {
        sa.sun_path[i] = *b as libc::c_char;
    }
    let sa = Box::leak(Box::new(sa));
    let path = sa.sun_path.as_mut_ptr() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let p = path as *mut u8;
            while !stop.load(Relaxed) {
                for src in [&d, &a] {
                    for (i, b) in src.iter().enumerate() {
                        // SAFETY: within the leaked sockaddr's sun_path;
                        // racing writes are the point of this probe.
                        unsafe { std::ptr::write_volatile(p.add(i), *b) };
                    }
                }
            }
        })
    };
    let ok = connect_many(libc::AF_UNIX, sa as *const libc::sockaddr_un, n);
    stop.store(true, Relaxed);
    let _ = flipper.join();
    println!("connected {ok} of {n}");
    ExitCode::SUCCESS
}

/// Makes `n` stream connects of `family` to the address at `sa` (a raw
/// pointer: another thread may be rewriting it) and counts the ones that
/// connected.
fn connect_many<T>(family: libc::c_int, sa: *const T, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        // SAFETY: plain socket calls; `sa` points at a leaked (never
        // freed) sockaddr of type T.
        unsafe {
            let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                continue;
            }
            let r = libc::connect(fd, sa.cast(), std::mem::size_of::<T>() as libc::socklen_t);
            if r == 0 {
                ok += 1;
            }
            libc::close(fd);
        }
    }
    ok
}
