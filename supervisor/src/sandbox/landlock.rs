//! Landlock access rights, ABI negotiation and rule planning (pure).
//!
//! Which rights exist depends on the kernel's ABI. cordon always *handles*
//! every right the kernel knows (so anything not granted is denied) and
//! reports, by name, each protection the profile needs that this ABI lacks.

use std::fmt;

// Filesystem rights (uapi `LANDLOCK_ACCESS_FS_*`).
pub const FS_EXECUTE: u64 = 1 << 0;
pub const FS_WRITE_FILE: u64 = 1 << 1;
pub const FS_READ_FILE: u64 = 1 << 2;
pub const FS_READ_DIR: u64 = 1 << 3;
pub const FS_REMOVE_DIR: u64 = 1 << 4;
pub const FS_REMOVE_FILE: u64 = 1 << 5;
pub const FS_MAKE_CHAR: u64 = 1 << 6;
pub const FS_MAKE_DIR: u64 = 1 << 7;
pub const FS_MAKE_REG: u64 = 1 << 8;
pub const FS_MAKE_SOCK: u64 = 1 << 9;
pub const FS_MAKE_FIFO: u64 = 1 << 10;
pub const FS_MAKE_BLOCK: u64 = 1 << 11;
pub const FS_MAKE_SYM: u64 = 1 << 12;
/// ABI 2: link and rename across directories.
pub const FS_REFER: u64 = 1 << 13;
/// ABI 3.
pub const FS_TRUNCATE: u64 = 1 << 14;
/// ABI 5: ioctl on device files.
pub const FS_IOCTL_DEV: u64 = 1 << 15;
/// ABI 9: connecting to (or sending to) a pathname Unix socket made
/// outside the domain.
pub const FS_RESOLVE_UNIX: u64 = 1 << 16;

/// The newest ABI whose rights cordon knows by name. A newer kernel's
/// further rights are found by probing (`host::Host::probe`) and handled
/// too, so they are denied rather than left open.
pub const KNOWN_ABI: u32 = 9;

// Network rights (ABI 4).
pub const NET_BIND_TCP: u64 = 1 << 0;
pub const NET_CONNECT_TCP: u64 = 1 << 1;

// Scopes (ABI 6).
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
pub const SCOPE_SIGNAL: u64 = 1 << 1;

/// The rights that apply to a file that is not a directory.
pub const FILE_RIGHTS: u64 =
    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV | FS_RESOLVE_UNIX;

/// What a Unix socket grant gives (the broker's socket, `[network] unix`).
pub const GRANT_UNIX: u64 = FS_RESOLVE_UNIX;

/// What a `read` entry grants.
pub const GRANT_READ: u64 = FS_READ_FILE | FS_READ_DIR;
/// What an `exec` entry grants (exec implies read: interpreters read scripts).
pub const GRANT_EXEC: u64 = GRANT_READ | FS_EXECUTE;
/// What a `write` entry grants (write implies read). Device nodes can never
/// be created.
pub const GRANT_WRITE: u64 = GRANT_READ
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE
    | FS_IOCTL_DEV;

/// All filesystem rights a kernel of `abi` knows.
pub fn fs_rights(abi: u32) -> u64 {
    let mut r = 0;
    if abi >= 1 {
        r |= (1 << 13) - 1;
    }
    if abi >= 2 {
        r |= FS_REFER;
    }
    if abi >= 3 {
        r |= FS_TRUNCATE;
    }
    if abi >= 5 {
        r |= FS_IOCTL_DEV;
    }
    if abi >= 9 {
        r |= FS_RESOLVE_UNIX;
    }
    r
}

/// All network rights a kernel of `abi` knows.
pub fn net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    }
}

/// All scopes a kernel of `abi` knows.
pub fn scopes(abi: u32) -> u64 {
    if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    }
}

/// The size of `struct landlock_ruleset_attr` a kernel of `abi` accepts.
pub fn ruleset_attr_size(abi: u32) -> usize {
    match abi {
        0..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    }
}

/// A protection cordon relies on, and the ABI that brings it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Filesystem read/write/exec rules (ABI 1).
    Filesystem,
    /// Truncation counts as a write (ABI 3); without it the agent can
    /// truncate any file it may only read.
    Truncate,
    /// TCP bind/connect rules (ABI 4); without it the network is open.
    TcpPorts,
    /// ioctl on device files is controlled (ABI 5).
    IoctlDev,
    /// The agent cannot signal processes outside its sandbox (ABI 6).
    ScopeSignal,
    /// The agent cannot connect to abstract Unix sockets outside it (ABI 6).
    ScopeAbstractUnix,
    /// Pathname Unix sockets outside the sandbox are reached only where
    /// granted (ABI 9). Below it the supervisor mediates `connect`.
    ResolveUnix,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Filesystem,
        Feature::Truncate,
        Feature::TcpPorts,
        Feature::IoctlDev,
        Feature::ScopeSignal,
        Feature::ScopeAbstractUnix,
        Feature::ResolveUnix,
    ];

    pub fn min_abi(self) -> u32 {
        match self {
            Feature::Filesystem => 1,
            Feature::Truncate => 3,
            Feature::TcpPorts => 4,
            Feature::IoctlDev => 5,
            Feature::ScopeSignal | Feature::ScopeAbstractUnix => 6,
            Feature::ResolveUnix => 9,
        }
    }

    /// Whether running without this feature makes the sandbox weaker than
    /// every profile asks (IoctlDev only narrows device ioctls further;
    /// without ResolveUnix the supervisor mediates Unix `connect` itself).
    pub fn required(self) -> bool {
        !matches!(self, Feature::IoctlDev | Feature::ResolveUnix)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Feature::Filesystem => "filesystem rules (Landlock ABI 1)",
            Feature::Truncate => "truncate control (Landlock ABI 3)",
            Feature::TcpPorts => "TCP bind/connect rules (Landlock ABI 4)",
            Feature::IoctlDev => "device ioctl control (Landlock ABI 5)",
            Feature::ScopeSignal => "signal scoping (Landlock ABI 6)",
            Feature::ScopeAbstractUnix => "abstract Unix socket scoping (Landlock ABI 6)",
            Feature::ResolveUnix => "pathname Unix socket rules (Landlock ABI 9)",
        };
        f.write_str(s)
    }
}

/// The required features a kernel of `abi` cannot provide (`abi` 0: no Landlock).
pub fn missing_required(abi: u32) -> Vec<Feature> {
    Feature::ALL
        .into_iter()
        .filter(|f| f.required() && abi < f.min_abi())
        .collect()
}

/// Rights a kernel newer than [`KNOWN_ABI`] accepts beyond the known
/// ones, found by probing: handled (so denied unless granted, and cordon
/// never grants what it cannot name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnknownRights {
    pub fs: u64,
    pub net: u64,
    pub scoped: u64,
}

/// The rights handled by a ruleset for `abi`, as (fs, net, scoped),
/// with the probed rights of a newer kernel.
pub fn handled(abi: u32, unknown: UnknownRights) -> (u64, u64, u64) {
    (
        fs_rights(abi) | unknown.fs,
        net_rights(abi) | unknown.net,
        scopes(abi) | unknown.scoped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_abi() {
        assert_eq!(fs_rights(0), 0);
        assert_eq!(fs_rights(1), 0x1fff);
        assert_eq!(fs_rights(2), 0x3fff);
        assert_eq!(fs_rights(3), 0x7fff);
        assert_eq!(fs_rights(4), 0x7fff);
        assert_eq!(fs_rights(5), 0xffff);
        assert_eq!(fs_rights(8), 0xffff);
        assert_eq!(fs_rights(9), 0x1ffff);
        assert_eq!(fs_rights(KNOWN_ABI + 3), 0x1ffff);
        assert_eq!(net_rights(3), 0);
        assert_eq!(net_rights(4), 3);
        assert_eq!(scopes(5), 0);
        assert_eq!(scopes(7), 3);
    }

    #[test]
    fn grants_never_include_device_creation() {
        for g in [GRANT_READ, GRANT_WRITE, GRANT_EXEC] {
            assert_eq!(g & (FS_MAKE_CHAR | FS_MAKE_BLOCK), 0);
        }
        assert_eq!(GRANT_READ & FS_EXECUTE, 0);
        // A write grant reaches sockets the agent makes itself; outside
        // ones only through an explicit Unix grant.
        assert_eq!(GRANT_WRITE & FS_RESOLVE_UNIX, 0);
        assert_eq!(GRANT_WRITE & FS_EXECUTE, 0);
    }

    #[test]
    fn probed_rights_of_a_newer_kernel_are_handled() {
        let unknown = UnknownRights {
            fs: 1 << 17,
            net: 1 << 2,
            scoped: 1 << 2,
        };
        let (fs, net, scoped) = handled(KNOWN_ABI + 1, unknown);
        assert_eq!(fs, fs_rights(KNOWN_ABI) | 1 << 17);
        assert_eq!(net, 0b111);
        assert_eq!(scoped, 0b111);
        assert_eq!(handled(7, UnknownRights::default()), (0xffff, 3, 3));
    }

    #[test]
    fn missing_features_are_named_per_abi() {
        assert_eq!(missing_required(9), vec![]);
        assert_eq!(missing_required(7), vec![]);
        assert_eq!(missing_required(6), vec![]);
        assert_eq!(
            missing_required(5),
            vec![Feature::ScopeSignal, Feature::ScopeAbstractUnix]
        );
        assert_eq!(missing_required(3).len(), 3);
        assert_eq!(missing_required(0).len(), 5);
        assert!(missing_required(3).contains(&Feature::TcpPorts));
    }
}
