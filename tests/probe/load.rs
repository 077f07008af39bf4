//! Load generators: timing brokered calls, and a hostile agent that floods
//! its broker.

use std::io::{Read, Write};
use std::process::ExitCode;

/// For benchmarks only: runs `argv` `n` times (spawn and wait, no shell)
/// and prints the median, p90 and p99 wall time per run in microseconds,
/// then every sample (`samples_us=a,b,...`, in the order they ran).
pub(crate) fn bench_exec(n: usize, argv: &[String]) -> ExitCode {
    let Some((prog, rest)) = argv.split_first() else {
        return ExitCode::from(2);
    };
    let mut times = Vec::with_capacity(n);
    let mut failures = 0;
    for _ in 0..n {
        let start = std::time::Instant::now();
        let ok = std::process::Command::new(prog)
            .args(rest)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        times.push(start.elapsed().as_micros());
        failures += usize::from(!ok);
    }
    let samples: Vec<String> = times.iter().map(u128::to_string).collect();
    times.sort_unstable();
    let q = |p: usize| times.get(times.len() * p / 100).copied().unwrap_or(0);
    println!(
        "runs={n} failures={failures} median_us={} p90_us={} p99_us={} samples_us={}",
        q(50),
        q(90),
        q(99),
        samples.join(",")
    );
    ExitCode::SUCCESS
}

/// A hostile agent for load tests: until stdin closes, `threads` threads
/// send forged exec requests for `tool` (`hi`, stdio on /dev/null) as fast
/// as the broker answers, one thread sends frames announcing 4 GiB (unless
/// `oversized` is false), and one keeps `hold` idle connections open
/// (reopened every 6 s, past the broker's request timeout). Then prints
/// what the broker answered.
pub(crate) fn flood_broker(tool: &str, threads: usize, hold: usize, oversized: bool) -> ExitCode {
    use cordon_shim::protocol::{Reply, Request, VERSION};
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let socket = std::env::var_os("CORDON_SOCKET").expect("CORDON_SOCKET is set");
    let stop = Arc::new(AtomicBool::new(false));
    // ok, refused, error, closed, oversized answered, connect failures,
    // held, frames sent
    let counts: Arc<[AtomicU64; 8]> = Arc::new(Default::default());
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    // Calls run with this process's stdout and stderr (cordon takes them
    // from the caller): point both at /dev/null, and report on a copy of
    // the real stdout.
    let mut report = unsafe {
        let out = libc::dup(1);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(null.as_raw_fd(), 2);
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(out)
    };
    let frame = Request::Exec {
        version: VERSION,
        tool: tool.as_bytes().to_vec(),
        args: vec![b"hi".to_vec()],
        cwd: Vec::new(),
        env: Vec::new(),
    }
    .encode()
    .expect("a small request encodes");
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (stop, counts, frame, socket) = (
            Arc::clone(&stop),
            Arc::clone(&counts),
            frame.clone(),
            socket.clone(),
        );
        handles.push(std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                    counts[5].fetch_add(1, Relaxed);
                    continue;
                };
                if s.write_all(&frame).is_err() {
                    counts[3].fetch_add(1, Relaxed);
                    continue;
                }
                counts[7].fetch_add(1, Relaxed);
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let i = match buf.get(4..).map(Reply::decode) {
                    Some(Ok(Reply::Exited { .. })) => 0,
                    Some(Ok(Reply::Denied { .. })) => 1,
                    Some(Ok(_)) => 2,
                    _ => 3,
                };
                counts[i].fetch_add(1, Relaxed);
            }
        }));
    }
    if oversized {
        let (stop, counts, socket) = (Arc::clone(&stop), Arc::clone(&counts), socket.clone());
        handles.push(std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                    counts[5].fetch_add(1, Relaxed);
                    continue;
                };
                if s.write_all(&[0xff, 0xff, 0xff, 0xff, 0x01]).is_ok() {
                    counts[7].fetch_add(1, Relaxed);
                }
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                if buf.len() > 4 {
                    counts[4].fetch_add(1, Relaxed);
                }
            }
        }));
    }
    {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        handles.push(std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let mut held = Vec::new();
                for _ in 0..hold {
                    match std::os::unix::net::UnixStream::connect(&socket) {
                        Ok(s) => held.push(s),
                        Err(_) => {
                            counts[5].fetch_add(1, Relaxed);
                        }
                    }
                }
                counts[6].fetch_add(held.len() as u64, Relaxed);
                for _ in 0..60 {
                    if stop.load(Relaxed) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }));
    }
    let _ = writeln!(report, "flooding");
    let _ = report.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let c: Vec<u64> = counts.iter().map(|a| a.load(Relaxed)).collect();
    let _ = writeln!(
        report,
        "flood sent={} calls_ok={} refused={} errors={} closed={} oversized_answered={} connect_failed={} held={}",
        c[7], c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    );
    ExitCode::SUCCESS
}

/// `bench-connect tcp PORT N` / `bench-connect unix PATH N`: times N
/// connects (socket, connect, close) to 127.0.0.1:PORT or to the Unix
/// socket PATH; prints the median like `bench-exec`.
pub(crate) fn bench_connect(kind: &str, target: &str, n: usize) -> ExitCode {
    let mut times = Vec::with_capacity(n);
    let mut failures = 0;
    for _ in 0..n {
        let start = std::time::Instant::now();
        let ok = match kind {
            "tcp" => target
                .parse::<u16>()
                .ok()
                .and_then(|p| std::net::TcpStream::connect(("127.0.0.1", p)).ok())
                .is_some(),
            "unix" => std::os::unix::net::UnixStream::connect(target).is_ok(),
            _ => return ExitCode::from(2),
        };
        times.push(start.elapsed().as_micros());
        failures += usize::from(!ok);
    }
    times.sort_unstable();
    let q = |p: usize| times.get(times.len() * p / 100).copied().unwrap_or(0);
    println!(
        "runs={n} failures={failures} median_us={} p90_us={}",
        q(50),
        q(90)
    );
    ExitCode::SUCCESS
}
