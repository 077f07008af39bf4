//! A new network namespace's set-up: loopback up, and the listener of
//! cordon's egress proxy made inside it and sent to the supervisor.

use std::os::fd::RawFd;

use super::report::{fail, fail_errno};
use super::{EgressSpec, Stage};

/// Brings up loopback in the new network namespace, listens on
/// 127.0.0.1:`port` and sends the listener to the supervisor, which serves
/// the proxy on it from outside. Only stack memory and syscalls.
#[allow(clippy::cast_possible_truncation)] // AF_INET (2), IFF_UP (1) and a 16-byte size
pub(super) fn setup_egress(rfd: RawFd, egress: EgressSpec) {
    // SAFETY: creates a socket; integer arguments only.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        fail(rfd, Stage::LoopbackUp, 0);
    }
    // struct ifreq: the name in the first 16 bytes, then ifr_flags (short).
    let mut ifr = [0u8; 40];
    ifr[..3].copy_from_slice(b"lo\0");
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags within the
    // 40-byte ifreq buffer.
    if unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, ifr.as_mut_ptr()) } != 0 {
        fail(rfd, Stage::LoopbackUp, 0);
    }
    // IFF_UP is 0x1, well within ifr_flags' short.
    let flags = i16::from_ne_bytes([ifr[16], ifr[17]]) | libc::IFF_UP as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: as above; SIOCSIFFLAGS only reads the buffer.
    if unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, ifr.as_ptr()) } != 0 {
        fail(rfd, Stage::LoopbackUp, 1);
    }
    // SAFETY: closes the socket made above.
    unsafe { libc::close(s) };

    // SAFETY: creates a socket; integer arguments only.
    let l = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if l < 0 {
        fail(rfd, Stage::EgressListen, 0);
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: egress.port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a live sockaddr_in of the size passed.
    let bound = unsafe {
        libc::bind(
            l,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    // SAFETY: listen on the socket made above.
    if bound != 0 || unsafe { libc::listen(l, libc::SOMAXCONN) } != 0 {
        fail(rfd, Stage::EgressListen, 1);
    }
    if let Err(e) = super::super::fd::send_fd(egress.sock, l) {
        fail_errno(rfd, Stage::SendEgress, 0, e.0 as u32);
    }
    // SAFETY: our copies; the supervisor holds the listener now.
    unsafe {
        libc::close(l);
        libc::close(egress.sock);
    }
}
