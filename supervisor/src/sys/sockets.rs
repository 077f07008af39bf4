//! The syscalls the supervisor makes on a sandboxed process's socket when
//! it mediates a connect or a send (`process::mediate`): a copy of the
//! process's descriptor (pidfd_getfd), what kind of socket it is, and the
//! connect or send itself, made with the supervisor's own copy of the
//! address and data (so a thread of the sandbox that rewrites its memory
//! meanwhile changes nothing).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, check_int, Errno};

/// A copy of descriptor `target` of the process `pidfd` refers to.
pub fn pidfd_getfd(pidfd: &OwnedFd, target: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_getfd takes two descriptors numbers and flags (0).
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0u32) };
    let fd = check_int(ret)?;
    // SAFETY: the kernel just installed this descriptor for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockopt_int(fd: RawFd, name: libc::c_int) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    let mut len: libc::socklen_t = 4; // sizeof(int)
                                      // SAFETY: the kernel writes one int into `v` and its size into `len`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    check(ret.into()).map(|_| v)
}

/// (domain, type) of a socket: `AF_INET`, `SOCK_STREAM`, ... ENOTSOCK for
/// another kind of file.
pub fn socket_kind(fd: &OwnedFd) -> Result<(i32, i32), Errno> {
    Ok((
        sockopt_int(fd.as_raw_fd(), libc::SO_DOMAIN)?,
        sockopt_int(fd.as_raw_fd(), libc::SO_TYPE)?,
    ))
}

/// `connect(fd, addr)`; `addr` is a whole `sockaddr_*` in bytes.
pub fn connect(fd: &OwnedFd, addr: &[u8]) -> Result<(), Errno> {
    connect_raw(fd.as_raw_fd(), addr)
}

/// `sendmsg(fd, {name, iov: data, SCM_RIGHTS of fds}, flags)`: the bytes
/// sent. `name` empty: no address (a connected socket); `fds` empty: no
/// control message.
pub fn send(
    fd: &OwnedFd,
    data: &[&[u8]],
    flags: i32,
    name: &[u8],
    fds: &[RawFd],
) -> Result<usize, Errno> {
    Outgoing::new(data, name, fds)?.send(fd.as_raw_fd(), flags)
}

/// A message with its iovecs and control buffer built, so that sending it
/// allocates nothing (it may be sent from a forked child, see
/// [`super::in_sandbox`]).
pub struct Outgoing<'a> {
    iov: Vec<libc::iovec>,
    control: Vec<u64>,
    control_len: usize,
    name: &'a [u8],
    /// The iovecs point into the caller's data.
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> Outgoing<'a> {
    pub fn new(data: &[&'a [u8]], name: &'a [u8], fds: &[RawFd]) -> Result<Self, Errno> {
        libc::socklen_t::try_from(name.len()).map_err(|_| Errno(libc::EINVAL))?;
        let iov = data
            .iter()
            .map(|d| libc::iovec {
                iov_base: d.as_ptr().cast_mut().cast(),
                iov_len: d.len(),
            })
            .collect();
        // The control buffer, 8-aligned, for one SCM_RIGHTS of `fds`.
        let fd_bytes = u32::try_from(fds.len() * 4).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        let control_len = if fds.is_empty() { 0 } else { space };
        if !fds.is_empty() {
            // SAFETY: msghdr is plain data; zero is valid for every field.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            // SAFETY: msg_control points at `space` writable, 8-aligned
            // bytes, which CMSG_SPACE says hold one header and `fds.len()`
            // ints.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr(),
                    libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                    fds.len(),
                );
            }
        }
        Ok(Outgoing {
            iov,
            control,
            control_len,
            name,
            _data: std::marker::PhantomData,
        })
    }

    /// `sendmsg` of the message on `fd`. Allocates nothing.
    pub fn send(&self, fd: RawFd, flags: i32) -> Result<usize, Errno> {
        // SAFETY: msghdr is plain data; zero is a valid value for every field.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if !self.name.is_empty() {
            msg.msg_name = self.name.as_ptr().cast_mut().cast();
            // Checked to fit in `new`.
            msg.msg_namelen = libc::socklen_t::try_from(self.name.len()).unwrap_or(0);
        }
        msg.msg_iov = self.iov.as_ptr().cast_mut();
        msg.msg_iovlen = self.iov.len();
        if self.control_len > 0 {
            msg.msg_control = self.control.as_ptr().cast_mut().cast();
            msg.msg_controllen = self.control_len;
        }
        // SAFETY: every pointer in `msg` refers to a live buffer of the
        // stated length (the name, the iovecs and the data they point at,
        // which `'a` keeps alive, the control buffer); the kernel only
        // reads them.
        let ret = unsafe { libc::sendmsg(fd, &msg, flags) };
        if ret < 0 {
            return Err(Errno::last());
        }
        Ok(ret.unsigned_abs())
    }
}

/// `connect` on a raw descriptor; allocates nothing.
pub fn connect_raw(fd: RawFd, addr: &[u8]) -> Result<(), Errno> {
    let len = libc::socklen_t::try_from(addr.len()).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `addr` is a live buffer of `len` bytes; the kernel copies it.
    let ret = unsafe { libc::connect(fd, addr.as_ptr().cast(), len) };
    check(ret.into()).map(drop)
}

/// The address the peer of a connected socket is bound to (empty when it
/// has none, or the socket is not connected).
pub fn peer_name(fd: &OwnedFd) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut len: libc::socklen_t = 128; // buf.len()
                                        // SAFETY: the kernel writes at most `len` bytes into `buf`.
    let ret = unsafe { libc::getpeername(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len) };
    if ret != 0 {
        return Vec::new();
    }
    buf[..(len as usize).min(buf.len())].to_vec()
}

/// Opens `path` without following a final symlink, as a path-only
/// descriptor (a socket file can be connected through `/proc/self/fd/N`
/// whatever the length of its real path).
pub fn open_path(path: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated; O_PATH opens without reading.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_socket_is_the_same_socket() {
        let l = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = crate::sys::process::pidfd_open(crate::sys::process::getpid()).unwrap();
        let dup = pidfd_getfd(&me, l.as_raw_fd()).unwrap();
        assert_eq!(
            socket_kind(&dup).unwrap(),
            (libc::AF_INET, libc::SOCK_DGRAM)
        );
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(a) = peer.local_addr().unwrap() else {
            panic!("v4")
        };
        // A sockaddr_in as bytes.
        let mut sa = [0u8; 16];
        sa[0..2].copy_from_slice(&u16::try_from(libc::AF_INET).unwrap().to_ne_bytes());
        sa[2..4].copy_from_slice(&a.port().to_be_bytes());
        sa[4..8].copy_from_slice(&a.ip().octets());
        assert_eq!(send(&dup, &[b"hi ", b"there"], 0, &sa, &[]).unwrap(), 8);
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi there");
        assert_eq!(
            from,
            l.local_addr().unwrap(),
            "sent from the original socket"
        );
        let f = std::fs::File::open("/etc/hostname").unwrap();
        let dup = pidfd_getfd(&me, f.as_raw_fd()).unwrap();
        assert_eq!(socket_kind(&dup), Err(Errno(libc::ENOTSOCK)));
    }

    #[test]
    fn descriptors_travel_with_a_send() {
        use std::io::Read;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = OwnedFd::from(a);
        let f = std::fs::File::open("/etc/hostname").unwrap();
        assert_eq!(send(&a, &[b"x"], 0, &[], &[f.as_raw_fd()]).unwrap(), 1);
        let mut byte = [0u8; 1];
        let (n, got) = crate::sys::fd::recv_with_fds(b.as_raw_fd(), &mut byte, 4).unwrap();
        assert_eq!((n, got.len()), (1, 1));
        let mut text = String::new();
        std::fs::File::from(got.into_iter().next().unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, std::fs::read_to_string("/etc/hostname").unwrap());
    }
}
