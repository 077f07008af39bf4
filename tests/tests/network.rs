#![allow(clippy::undocumented_unsafe_blocks, clippy::cast_possible_truncation)] // tests call libc directly to act as an attacker would
//! Landlock TCP rules and scoping on the real kernel.

mod common;
use common::*;
use std::net::TcpListener;

#[test]
fn only_the_granted_tcp_port_connects() {
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (
        allowed.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    let c = Case::new();
    let mut p = Profile::base();
    p.connect_tcp.push(a);
    c.run(&p, &["connect", &a.to_string()]).ok();
    c.run(&p, &["connect", &b.to_string()])
        .failed_with(&["EACCES"]);
}

#[test]
fn binding_needs_a_grant() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let c = Case::new();
    let mut p = Profile::base();
    c.run(&p, &["bind", &port.to_string()])
        .failed_with(&["EACCES"]);
    p.bind_tcp.push(port);
    c.run(&p, &["bind", &port.to_string()]).ok();
}

#[test]
fn abstract_unix_sockets_outside_the_sandbox_are_unreachable() {
    let name = token("abstract");
    // Bind an abstract socket in the test process, outside any sandbox.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in name.bytes().enumerate() {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    assert_eq!(
        unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) },
        0
    );
    assert_eq!(unsafe { libc::listen(fd, 4) }, 0);
    let c = Case::new();
    c.run(&Profile::base(), &["connect-abstract", &name])
        .failed_with(&["EPERM"]);
    unsafe { libc::close(fd) };
}

#[test]
fn the_agent_cannot_signal_outside_its_domain() {
    let c = Case::new();
    // pid 1 in the agent's namespace is cordon's init, outside its Landlock
    // domain; every process of the host is invisible altogether.
    c.run(&Profile::base(), &["signal", "1"])
        .failed_with(&["EPERM"]);
    let outside = std::process::id().to_string();
    c.run(&Profile::base(), &["signal", &outside])
        .failed_with(&["ESRCH", "EPERM"]);
}
