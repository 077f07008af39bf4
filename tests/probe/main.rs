//! cordon-probe: runs inside the sandbox and attempts one thing per call.
//!
//! `cordon-probe ACTION ARGS...` prints `ok` or `err <errno> <name>` on
//! stdout and exits 0 on success, 1 on failure, 2 on bad usage. Tests read
//! that line; a probe killed by cordon prints nothing and cordon exits 86.
// A test tool that makes raw calls on purpose and may panic on bad usage.
#![allow(
    clippy::undocumented_unsafe_blocks,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::ffi::CString;
use std::io::{Read, Write};
use std::process::ExitCode;

mod broker;
mod load;
mod mcp;
mod net;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn report(ret: i64) -> ExitCode {
    if ret >= 0 {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        err(errno())
    }
}

fn err(e: i32) -> ExitCode {
    let name = match e {
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EXDEV => "EXDEV",
        libc::EBUSY => "EBUSY",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ESRCH => "ESRCH",
        libc::EINVAL => "EINVAL",
        _ => "OTHER",
    };
    println!("err {e} {name}");
    ExitCode::from(1)
}

fn io_result<T>(r: std::io::Result<T>) -> ExitCode {
    match r {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => err(e.raw_os_error().unwrap_or(0)),
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in probe arguments")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match a(0) {
        "read" => io_result(std::fs::read(a(1)).map(|data| std::io::stderr().write_all(&data))),
        "list" => io_result(std::fs::read_dir(a(1))),
        "write" => io_result(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(a(1))
                .and_then(|mut f| f.write_all(b"written by probe")),
        ),
        "append" => io_result(
            std::fs::OpenOptions::new()
                .append(true)
                .open(a(1))
                .and_then(|mut f| f.write_all(b"appended")),
        ),
        "mkdir" => io_result(std::fs::create_dir(a(1))),
        "truncate" => report(unsafe { libc::truncate(cstr(a(1)).as_ptr(), 0) }.into()),
        "chmod" => report(unsafe { libc::chmod(cstr(a(1)).as_ptr(), 0o644) }.into()),
        "rename" => io_result(std::fs::rename(a(1), a(2))),
        "link" => io_result(std::fs::hard_link(a(1), a(2))),
        "symlink-read" => {
            // Make a symlink at a(2) pointing to a(1), then read through it.
            if let Err(e) = std::os::unix::fs::symlink(a(1), a(2)) {
                return err(e.raw_os_error().unwrap_or(0));
            }
            io_result(std::fs::read(a(2)))
        }
        "exec" => {
            // exec PATH [ARGS...], with this process's environment.
            let strings: Vec<std::ffi::CString> =
                args[1.min(args.len())..].iter().map(|s| cstr(s)).collect();
            let mut argv: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
            argv.push(std::ptr::null());
            let env: Vec<std::ffi::CString> = std::env::vars()
                .map(|(k, v)| cstr(&format!("{k}={v}")))
                .collect();
            let mut envp: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
            envp.push(std::ptr::null());
            let path = cstr(a(1));
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            err(errno())
        }
        "connect" => io_result(std::net::TcpStream::connect((
            "127.0.0.1",
            a(1).parse::<u16>().unwrap_or(0),
        ))),
        "bind" => io_result(std::net::TcpListener::bind((
            "127.0.0.1",
            a(1).parse::<u16>().unwrap_or(0),
        ))),
        "connect-abstract" => connect_abstract(a(1)),
        "connect-addr" => io_result(std::net::TcpStream::connect((
            a(1),
            a(2).parse::<u16>().unwrap_or(0),
        ))),
        "udp-send" => io_result(
            std::net::UdpSocket::bind(if a(1).contains(':') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })
            .and_then(|s| s.send_to(b"cordon-udp-escape", (a(1), a(2).parse().unwrap_or(0)))),
        ),
        "unix-connect-race" => net::unix_connect_race(a(1), a(2), a(3).parse().unwrap_or(1000)),
        "connect-race" => net::connect_race(
            a(1).parse().unwrap_or(0),
            a(2).parse().unwrap_or(0),
            a(3).parse().unwrap_or(1000),
        ),
        "socket" => net::raw_socket(a(1)),
        "egress-bench" => net::egress_bench(&args[1..]),
        "sink" => net::sink(a(1)),
        "proxy-raw" => net::proxy_raw(a(1).as_bytes()),
        "proxy-stall" => net::proxy_stall(a(1).parse().unwrap_or(5)),
        "signal" => report(unsafe { libc::kill(a(1).parse().unwrap_or(0), libc::SIGTERM) }.into()),
        "syscall" => syscall(a(1)),
        "caps" => caps(),
        "env" => {
            for (k, v) in std::env::vars_os() {
                println!("{}={}", k.to_string_lossy(), v.to_string_lossy());
            }
            ExitCode::SUCCESS
        }
        "fds" => {
            // Every open descriptor number, one per line.
            for fd in 0..4096 {
                if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
                    println!("{fd}");
                }
            }
            ExitCode::SUCCESS
        }
        "exit" => ExitCode::from(a(1).parse::<u8>().unwrap_or(0)),
        "kill-self" => {
            unsafe { libc::kill(libc::getpid(), a(1).parse().unwrap_or(libc::SIGKILL)) };
            std::thread::sleep(std::time::Duration::from_secs(5));
            ExitCode::from(3)
        }
        "sleep" => {
            // `sleep SECONDS [TOKEN]`: the token marks the process for tests
            // that look for survivors in the host's /proc.
            println!("ready");
            let _ = std::io::stdout().flush();
            std::thread::sleep(std::time::Duration::from_secs(a(1).parse().unwrap_or(60)));
            ExitCode::SUCCESS
        }
        "ignore-term" => {
            // ignore-term [TOKEN [READY_FILE]]: the file says "ready" once
            // SIGTERM is ignored, for callers that cannot read stdout.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            println!("ready");
            let _ = std::io::stdout().flush();
            if !a(2).is_empty() {
                let _ = std::fs::write(a(2), "ready");
            }
            std::thread::sleep(std::time::Duration::from_secs(60));
            ExitCode::SUCCESS
        }
        "daemon" => daemon(a(1), a(2)),
        "send-raw" => broker::send_raw(a(1), a(2).parse().unwrap_or(0)),
        "unix-send" => broker::unix_send(a(1), a(2)),
        "send-raw-fds" => broker::send_raw_fds(a(1)),
        "flood" => broker::flood(a(1).parse().unwrap_or(0), a(2).parse().unwrap_or(1)),
        "bench-connect" => load::bench_connect(a(1), a(2), a(3).parse().unwrap_or(1000)),
        "bench-exec" => load::bench_exec(a(1).parse().unwrap_or(100), &args[2.min(args.len())..]),
        "secret-forms" => secret_forms(a(1)),
        "cat-env-file" => io_result(
            std::env::var_os(a(1))
                .ok_or(std::io::ErrorKind::NotFound.into())
                .and_then(std::fs::read)
                .map(|data| {
                    let _ = std::io::stdout().write_all(&data);
                    println!();
                }),
        ),
        "memfd-exec" => memfd_exec(a(1) == "exec-flag"),
        "child-syscall" => {
            // A grandchild of the agent makes the syscall: violations are
            // seen anywhere in the tree, not just in the agent itself.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = syscall(a(1));
                std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
            }
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("child-status {status}");
            ExitCode::SUCCESS
        }
        "nr" => {
            // `nr NUMBER [ARG...]`: a raw syscall, numbers in decimal or 0x hex.
            let num = |t: &str| {
                t.strip_prefix("0x")
                    .map_or_else(
                        || t.parse::<u64>().ok(),
                        |h| u64::from_str_radix(h, 16).ok(),
                    )
                    .unwrap_or(0)
            };
            let mut v = [0u64; 7];
            for (i, t) in args.iter().skip(1).take(7).enumerate() {
                v[i] = num(t);
            }
            let ret =
                unsafe { libc::syscall(v[0] as libc::c_long, v[1], v[2], v[3], v[4], v[5], v[6]) };
            report(ret)
        }
        "shim-call" => broker::shim_call(&args[1..]),
        "flood-broker" => load::flood_broker(
            a(1),
            a(2).parse().unwrap_or(8),
            a(3).parse().unwrap_or(200),
            a(4) != "no-oversized",
        ),
        "burn" => {
            // `burn THREADS`: spins THREADS threads until stdin closes (an
            // agent that only uses CPU: the reference for load benchmarks).
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let spinners: Vec<_> = (0..a(1).parse().unwrap_or(2))
                .map(|_| {
                    let stop = std::sync::Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let mut x = 0u64;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            x = std::hint::black_box(x.wrapping_add(1));
                        }
                    })
                })
                .collect();
            println!("flooding");
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for t in spinners {
                let _ = t.join();
            }
            println!("burned");
            ExitCode::SUCCESS
        }
        "shim-secret" => broker::shim_secret(a(1)),
        "mcp" => mcp::session(a(1), a(2)),
        "mcp-bench" => mcp::bench(a(1).parse().unwrap_or(100), &args[2.min(args.len())..]),
        "capset-all" => capset_all(),
        "nice" => {
            // This process's nice value (a brokered call's priority).
            println!("nice={}", unsafe {
                libc::getpriority(libc::PRIO_PROCESS, 0)
            });
            ExitCode::SUCCESS
        }
        "no-new-privs" => {
            println!("no_new_privs={}", unsafe {
                libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
            });
            ExitCode::SUCCESS
        }
        "wait-stdin" => {
            // Blocks until stdin closes: lets a test act while the probe runs.
            println!("ready");
            let _ = std::io::stdout().flush();
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: cordon-probe ACTION [ARGS...]");
            ExitCode::from(2)
        }
    }
}

fn connect_abstract(name: &str) -> ExitCode {
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return err(errno());
    }
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // Abstract: a leading NUL, then the name (not NUL-terminated).
    for (i, b) in name.bytes().enumerate().take(100) {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len().min(100);
    let ret = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    report(ret.into())
}

fn syscall(name: &str) -> ExitCode {
    let ret: i64 = unsafe {
        match name {
            "ptrace" => libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0),
            "unshare-user" => libc::unshare(libc::CLONE_NEWUSER).into(),
            "unshare-files" => libc::unshare(libc::CLONE_FILES).into(),
            "mount" => libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
            .into(),
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
            }
            "bpf" => {
                let mut attr = [0u8; 128];
                libc::syscall(libc::SYS_bpf, 0, attr.as_mut_ptr(), attr.len())
            }
            "tiocsti" => {
                let c = b'x';
                libc::ioctl(0, libc::TIOCSTI, &c).into()
            }
            "personality-aslr-off" => libc::personality(0x0040000).into(),
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0),
            "int80" => int80(),
            "getpid" => libc::getpid().into(),
            "clone3" => libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize),
            _ => {
                eprintln!("unknown syscall probe {name}");
                return ExitCode::from(2);
            }
        }
    };
    report(ret)
}

/// getpid through the i386 ABI (`int 0x80`, eax = 20).
#[cfg(target_arch = "x86_64")]
fn int80() -> i64 {
    let mut eax: i64 = 20;
    // SAFETY-free probe: the kernel runs the 32-bit getpid or seccomp stops it.
    unsafe { std::arch::asm!("int 0x80", inout("rax") eax, options(nostack)) };
    eax
}

#[cfg(not(target_arch = "x86_64"))]
fn int80() -> i64 {
    -1
}

/// Prints the effective, permitted and inheritable capability words.
fn caps() -> ExitCode {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } != 0 {
        return err(errno());
    }
    let eff = u64::from(d[0].effective) | (u64::from(d[1].effective) << 32);
    let prm = u64::from(d[0].permitted) | (u64::from(d[1].permitted) << 32);
    let inh = u64::from(d[0].inheritable) | (u64::from(d[1].inheritable) << 32);
    let bnd = (0..64)
        .filter(|&c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, c, 0, 0, 0) } == 1)
        .count();
    let amb = (0..64)
        .filter(|&c| unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_IS_SET, c, 0, 0) } == 1)
        .count();
    println!("eff={eff:x} prm={prm:x} inh={inh:x} bounding={bnd} ambient={amb}");
    ExitCode::SUCCESS
}

/// Double-forks a setsid daemon that runs `cordon-probe sleep 300 TOKEN`,
/// then, when `then` is given, makes that syscall probe (to get killed),
/// or with `wait` sleeps 60 s.
fn daemon(token: &str, then: &str) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => cstr(&p.to_string_lossy()),
        Err(_) => return err(libc::ENOENT),
    };
    let (a0, a1, a2, a3) = (
        cstr("cordon-probe"),
        cstr("sleep"),
        cstr("300"),
        cstr(token),
    );
    let argv = [
        a0.as_ptr(),
        a1.as_ptr(),
        a2.as_ptr(),
        a3.as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null()];
    let mut fds = [0; 2];
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::setsid();
            if libc::fork() == 0 {
                // The grandchild: tell the probe it exists, then become the daemon.
                libc::write(fds[1], b"x".as_ptr().cast(), 1);
                libc::close(fds[0]);
                libc::close(fds[1]);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(1);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let mut b = [0u8; 1];
    unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
    // Give the daemon a moment to exec so its token shows in /proc.
    std::thread::sleep(std::time::Duration::from_millis(200));
    println!("daemonized");
    let _ = std::io::stdout().flush();
    if then.is_empty() {
        ExitCode::SUCCESS
    } else if then == "wait" {
        // Stays alive, so the test can act on cordon while both run.
        std::thread::sleep(std::time::Duration::from_secs(60));
        ExitCode::SUCCESS
    } else {
        syscall(then)
    }
}

/// Prints the value of environment variable `var` in the forms a leaky
/// tool might: raw, split across two writes, base64 of `user:value`,
/// URL-encoded, JSON-escaped, and each line of a multi-line value.
fn secret_forms(var: &str) -> ExitCode {
    let Some(v) = std::env::var_os(var) else {
        println!("unset");
        return ExitCode::from(1);
    };
    use std::os::unix::ffi::OsStrExt;
    let v = v.as_bytes().to_vec();
    let mut out = std::io::stdout();
    let _ = out.write_all(b"raw: ");
    let _ = out.write_all(&v);
    let _ = out.write_all(b"\nsplit: ");
    let half = v.len() / 2;
    let _ = out.write_all(&v[..half]);
    let _ = out.flush();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let _ = out.write_all(&v[half..]);
    let mut basic = b"user:".to_vec();
    basic.extend_from_slice(&v);
    let _ = writeln!(out, "\nbasic: {}", base64(&basic));
    let _ = writeln!(out, "b64: {}", base64(&v));
    let url: String = v
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let _ = writeln!(out, "url: {url}");
    let json: String = String::from_utf8_lossy(&v)
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_string(),
            '\\' => "\\\\".to_string(),
            '\n' => "\\n".to_string(),
            c => c.to_string(),
        })
        .collect();
    let _ = writeln!(out, "json: \"{json}\"");
    eprintln!("stderr: {}", String::from_utf8_lossy(&v));
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Copies /usr/bin/true into a memfd and executes it by descriptor: a way
/// around path-based exec rules. With `exec_flag`, asks for an executable
/// memfd (MFD_EXEC) explicitly.
fn memfd_exec(exec_flag: bool) -> ExitCode {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_EXEC: u32 = 0x10;
    let flags = if exec_flag {
        MFD_CLOEXEC | MFD_EXEC
    } else {
        MFD_CLOEXEC
    };
    let fd = unsafe { libc::syscall(libc::SYS_memfd_create, c"x".as_ptr(), flags) } as i32;
    if fd < 0 {
        return err(errno());
    }
    let Ok(bin) = std::fs::read("/usr/bin/true") else {
        return err(libc::EACCES);
    };
    unsafe { libc::write(fd, bin.as_ptr().cast(), bin.len()) };
    let argv = [c"true".as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    err(errno())
}

/// Tries to raise every capability in every set (capset).
fn capset_all() -> ExitCode {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let d = [
        Data {
            effective: u32::MAX,
            permitted: u32::MAX,
            inheritable: u32::MAX,
        },
        Data {
            effective: u32::MAX,
            permitted: u32::MAX,
            inheritable: u32::MAX,
        },
    ];
    report(unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) })
}
