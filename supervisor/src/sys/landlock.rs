//! The Landlock uapi: three syscalls and their structs.
//!
//! We talk to the kernel directly instead of through the `landlock` crate
//! because path rules must be added in the forked child, after its mount
//! namespace has masked the denied paths and mounted its own /proc (rules
//! bind to inodes, so they must be opened there), and that code may not
//! allocate. The pure access-right logic is in `sandbox::landlock`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{check, Errno};

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_ADD_RULE: libc::c_long = 445;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;

const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;
pub const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;
pub const LANDLOCK_RULE_NET_PORT: u32 = 2;

/// `struct landlock_ruleset_attr` (ABI 6 layout).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the uapi).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct PathBeneathAttr {
    pub allowed_access: u64,
    pub parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NetPortAttr {
    pub allowed_access: u64,
    pub port: u64,
}

/// The Landlock ABI version of the running kernel, or the errno saying why
/// there is none (ENOSYS: not built; EOPNOTSUPP: disabled at boot).
pub fn abi_version() -> Result<u32, Errno> {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the kernel only
    // returns the ABI number and touches no memory.
    let ret = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    check(ret).map(|v| u32::try_from(v).unwrap_or(0))
}

/// Creates a ruleset. `attr_size` lets older kernels receive the shorter
/// struct they know (8 bytes before ABI 4, 16 before ABI 6).
pub fn create_ruleset(attr: &RulesetAttr, attr_size: usize) -> Result<OwnedFd, Errno> {
    let size = attr_size.min(std::mem::size_of::<RulesetAttr>());
    // SAFETY: `attr` points to a live RulesetAttr of at least `size` bytes.
    let ret = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            attr as *const RulesetAttr,
            size,
            0u32,
        )
    };
    let fd = super::check_int(ret)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds a TCP port rule (done in the parent: ports need no namespace).
pub fn add_net_rule(ruleset: RawFd, port: u16, access: u64) -> Result<(), Errno> {
    let attr = NetPortAttr {
        allowed_access: access,
        port: u64::from(port),
    };
    // SAFETY: `attr` is a live NetPortAttr, the type LANDLOCK_RULE_NET_PORT expects.
    let ret = unsafe {
        libc::syscall(
            SYS_LANDLOCK_ADD_RULE,
            ruleset,
            LANDLOCK_RULE_NET_PORT,
            &attr as *const NetPortAttr,
            0u32,
        )
    };
    check(ret).map(drop)
}

/// Adds a path rule for the directory or file open at `parent_fd`.
/// Async-signal-safe: one syscall, no allocation.
pub fn add_path_rule(ruleset: RawFd, parent_fd: RawFd, access: u64) -> Result<(), Errno> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd,
    };
    // SAFETY: `attr` is a live PathBeneathAttr, the type LANDLOCK_RULE_PATH_BENEATH expects.
    let ret = unsafe {
        libc::syscall(
            SYS_LANDLOCK_ADD_RULE,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    check(ret).map(drop)
}

/// Enforces the ruleset on the calling thread (and its future children).
/// Requires no_new_privs. Async-signal-safe.
pub fn restrict_self(ruleset: RawFd) -> Result<(), Errno> {
    // SAFETY: the syscall takes an fd and flags, no memory.
    let ret = unsafe { libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0u32) };
    check(ret).map(drop)
}
