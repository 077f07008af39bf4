//! What this host is and offers: the kernel facts a launch depends on,
//! probed once per run ([`Host`]), and the host facts `cordon doctor` and
//! `cordon serve` read ([`mountinfo`], [`cgroup`], [`kernel`]). Reading
//! only; the verdicts live with the commands that give them.

pub mod cgroup;
pub mod elf;
pub mod kernel;
pub mod mountinfo;
pub mod resolv;

use crate::sandbox::landlock::{self as ll, UnknownRights, KNOWN_ABI};
use crate::sys::{self, landlock, seccomp, Errno};

/// Set this to a number to make cordon behave as if the kernel's Landlock
/// ABI were at most that (0 = no Landlock). It can only lower what is
/// used, so it can never weaken a sandbox silently: a profile then refuses
/// to start unless it opts into best effort. Used to test older kernels.
pub const ABI_CAP_VAR: &str = "CORDON_LANDLOCK_ABI";

/// The kernel facts a launch depends on.
#[derive(Debug, Clone)]
pub struct Host {
    /// Landlock ABI, or why there is none.
    pub landlock_abi: Result<u32, Errno>,
    /// Set when `CORDON_LANDLOCK_ABI` lowered the ABI.
    pub abi_capped_from: Option<u32>,
    /// CAP_SYS_ADMIN: namespaces can be made without a user namespace.
    pub privileged: bool,
    pub seccomp_user_notif: bool,
    pub euid: u32,
    pub egid: u32,
    /// On a kernel newer than cordon knows: the further Landlock rights
    /// it accepts (handled, never granted).
    pub landlock_unknown: UnknownRights,
}

impl Host {
    pub fn probe() -> Host {
        let mut abi = landlock::abi_version();
        let mut capped_from = None;
        if let Some(cap) = std::env::var(ABI_CAP_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            let real = abi.unwrap_or(0);
            if cap < real {
                capped_from = Some(real);
                abi = if cap == 0 {
                    Err(Errno(libc::ENOSYS))
                } else {
                    Ok(cap)
                };
            }
        }
        let landlock_unknown = match abi {
            Ok(a) if a > KNOWN_ABI => probe_unknown_rights(),
            _ => UnknownRights::default(),
        };
        Host {
            landlock_unknown,
            landlock_abi: abi,
            abi_capped_from: capped_from,
            privileged: sys::has_effective_cap(sys::CAP_SYS_ADMIN),
            seccomp_user_notif: seccomp::action_available(seccomp::SECCOMP_RET_USER_NOTIF)
                && seccomp::check_notif_sizes().is_ok(),
            euid: sys::geteuid(),
            egid: sys::getegid(),
        }
    }

    /// The usable ABI (0 when Landlock is unavailable).
    pub fn abi(&self) -> u32 {
        self.landlock_abi.unwrap_or(0)
    }
}

/// Each right bit past the known ones that the kernel accepts in a
/// ruleset (a kernel refuses unknown bits with EINVAL): one throwaway
/// ruleset per bit, on kernels newer than cordon only.
fn probe_unknown_rights() -> UnknownRights {
    let (fs, net, scoped) = ll::handled(KNOWN_ABI, UnknownRights::default());
    let size = ll::ruleset_attr_size(KNOWN_ABI);
    let accepts = |attr: landlock::RulesetAttr| landlock::create_ruleset(&attr, size).is_ok();
    let mut found = UnknownRights::default();
    for bit in 0..64 {
        let b = 1u64 << bit;
        let attr = |f, n, s| landlock::RulesetAttr {
            handled_access_fs: f,
            handled_access_net: n,
            scoped: s,
        };
        if fs & b == 0 && accepts(attr(b, 0, 0)) {
            found.fs |= b;
        }
        if net & b == 0 && accepts(attr(0, b, 0)) {
            found.net |= b;
        }
        if scoped & b == 0 && accepts(attr(0, 0, b)) {
            found.scoped |= b;
        }
    }
    found
}

/// Human words for why Landlock is missing.
pub fn landlock_absence(e: Errno) -> &'static str {
    match e.0 {
        libc::ENOSYS => "the kernel was built without Landlock (CONFIG_SECURITY_LANDLOCK)",
        libc::EOPNOTSUPP => "Landlock is built in but disabled: add `landlock` to the kernel's `lsm=` boot parameter",
        _ => "the Landlock syscalls failed",
    }
}
