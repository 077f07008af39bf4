//! `cordon doctor`'s verdicts: from probed host facts to one line per check,
//! and a summary. Pure, except for reading the cgroup tree it is pointed at
//! (so everything here is unit-testable on fake facts and temp files).

use std::fmt;
use std::path::{Path, PathBuf};

use super::host::{landlock_absence, Host, ABI_CAP_VAR};
use super::landlock::Feature;
use crate::sys::probe::{NsTrialResult, Step};
use crate::sys::Errno;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Warn,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::No => "no",
            Status::Warn => "warn",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    /// Short name, used in the summary when the check fails.
    pub title: String,
    /// Plain words: what works, or what is lost and how to fix it.
    pub detail: String,
    /// A `no` here means cordon refuses to run profiles (exit 1 from doctor).
    pub required: bool,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}: {}", self.status, self.title, self.detail)
    }
}

impl Check {
    fn new(status: Status, title: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status,
            title: title.into(),
            detail: detail.into(),
            required: false,
        }
    }

    fn required(mut self) -> Check {
        self.required = true;
        self
    }
}

/// User-namespace sysctls (None: the file does not exist on this kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernsSysctls {
    /// /proc/sys/user/max_user_namespaces
    pub max_user_namespaces: Option<u64>,
    /// /proc/sys/kernel/unprivileged_userns_clone (Debian/Ubuntu patch)
    pub unprivileged_userns_clone: Option<u64>,
    /// /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10+)
    pub apparmor_restrict: Option<u64>,
}

impl UsernsSysctls {
    /// Reads the three files under `proc_sys` (normally /proc/sys).
    pub fn read(proc_sys: &Path) -> UsernsSysctls {
        let num = |rel: &str| -> Option<u64> {
            std::fs::read_to_string(proc_sys.join(rel))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        UsernsSysctls {
            max_user_namespaces: num("user/max_user_namespaces"),
            unprivileged_userns_clone: num("kernel/unprivileged_userns_clone"),
            apparmor_restrict: num("kernel/apparmor_restrict_unprivileged_userns"),
        }
    }

    /// The sysctls that stop unprivileged users from creating user namespaces.
    fn blockers(&self) -> Vec<&'static str> {
        let mut b = Vec::new();
        if self.max_user_namespaces == Some(0) {
            b.push("user.max_user_namespaces=0 (set it above 0)");
        }
        if self.unprivileged_userns_clone == Some(0) {
            b.push("kernel.unprivileged_userns_clone=0 (set it to 1)");
        }
        if self.apparmor_restrict == Some(1) {
            b.push("kernel.apparmor_restrict_unprivileged_userns=1 (set it to 0, or give cordon an AppArmor profile with `userns,`)");
        }
        b
    }

    fn describe(&self) -> String {
        let show = |v: Option<u64>| v.map_or_else(|| "absent".to_string(), |n| n.to_string());
        format!(
            "max_user_namespaces={}, unprivileged_userns_clone={}, apparmor_restrict_unprivileged_userns={}",
            show(self.max_user_namespaces),
            show(self.unprivileged_userns_clone),
            show(self.apparmor_restrict)
        )
    }
}

/// One line of /proc/self/mountinfo, the fields doctor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The per-superblock options (after the source), e.g. `rw,cpu`.
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = oct
                        .iter()
                        .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                    if let Ok(v) = u8::try_from(v) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // id parent major:minor root mount_point options [optional...] - fstype source super_options
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 {
                return None;
            }
            let fstype = fields.get(sep + 1)?;
            Some(Mount {
                mount_point: PathBuf::from(unescape(fields[4])),
                fstype: unescape(fstype),
                super_options: fields
                    .get(sep + 3)
                    .map_or_else(String::new, |s| unescape(s)),
            })
        })
        .collect()
}

/// How cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// No cgroup filesystem mounted.
    None,
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 hierarchy (usually /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// The cgroup layout seen in a mountinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    pub mode: CgroupMode,
    /// Where cgroup2 is mounted (the first one, if several).
    pub v2_mount: Option<PathBuf>,
}

/// The cgroup layout of the mount table in `mountinfo` (a path, so tests
/// can pass a temp file; normally /proc/self/mountinfo).
pub fn cgroup_layout(mountinfo: &Path) -> std::io::Result<CgroupLayout> {
    Ok(layout_of(&parse_mountinfo(&std::fs::read_to_string(
        mountinfo,
    )?)))
}

/// The cgroup layout of a parsed mount table.
pub fn layout_of(mounts: &[Mount]) -> CgroupLayout {
    let v2_mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.mount_point.clone());
    let v1 = mounts.iter().any(|m| m.fstype == "cgroup");
    let mode = match (v1, v2_mount.is_some()) {
        (false, false) => CgroupMode::None,
        (true, false) => CgroupMode::Legacy,
        (true, true) => CgroupMode::Hybrid,
        (false, true) => CgroupMode::Unified,
    };
    CgroupLayout { mode, v2_mount }
}

/// This process's cgroup2 path from /proc/self/cgroup text (the `0::` line).
pub fn own_v2_cgroup(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// Whether `cgroup.kill` can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupKill {
    /// Found at this path.
    Present(PathBuf),
    /// No child cgroup to look in (the root cgroup never has the file), but
    /// the kernel is new enough (5.14+) to have it in any child cgroup.
    KernelHasIt,
    /// The kernel predates cgroup.kill (5.14).
    KernelTooOld,
    /// No cgroup2 hierarchy, or it could not be read.
    Unknown,
}

/// Looks for `cgroup.kill` in this process's own cgroup, then in the
/// direct children of the hierarchy root; falls back on the kernel version.
pub fn find_cgroup_kill(
    v2_mount: &Path,
    own: Option<&str>,
    kernel: Option<(u32, u32)>,
) -> CgroupKill {
    let mut candidates = Vec::new();
    if let Some(own) = own {
        let rel = own.trim_start_matches('/');
        if !rel.is_empty() {
            candidates.push(v2_mount.join(rel));
        }
    }
    if let Ok(entries) = std::fs::read_dir(v2_mount) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        candidates.extend(dirs);
    }
    if let Some(found) = candidates
        .into_iter()
        .map(|d| d.join("cgroup.kill"))
        .find(|p| p.exists())
    {
        return CgroupKill::Present(found);
    }
    match kernel {
        Some(v) if v >= (5, 14) => CgroupKill::KernelHasIt,
        Some(_) => CgroupKill::KernelTooOld,
        None => CgroupKill::Unknown,
    }
}

/// (major, minor) from a kernel release such as `6.18.44-fc-v769`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// cgroup facts for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFacts {
    /// Err: mountinfo could not be read (the message).
    pub layout: Result<CgroupLayout, String>,
    pub kill: CgroupKill,
    /// Whether this user may create a child cgroup where cordon runs.
    pub can_create: bool,
}

/// Everything doctor probed.
#[derive(Debug, Clone)]
pub struct Facts {
    pub kernel_release: String,
    pub host: Host,
    /// SECCOMP_GET_ACTION_AVAIL answered: seccomp filters are built in.
    pub seccomp_filters: bool,
    /// The trial run cordon's own launch mirrors: user+pid+mount+/proc when
    /// unprivileged, pid+mount+/proc when privileged.
    pub launch_trial: NsTrialResult,
    /// A trial of the network namespace host rules need.
    pub net_trial: NsTrialResult,
    /// When privileged: whether an unprivileged user (uid 65534) could
    /// create user+pid+mount namespaces. None when unprivileged (then
    /// `launch_trial` already answers that).
    pub unprivileged_trial: Option<NsTrialResult>,
    pub sysctls: UsernsSysctls,
    pub cgroup: CgroupFacts,
    pub pidfd_open: Result<(), Errno>,
    pub peer_pidfd: Result<(), Errno>,
}

/// The kernel release that brought each Landlock ABI.
fn landlock_kernel(abi: u32) -> &'static str {
    match abi {
        0 | 1 => "5.13",
        2 => "5.19",
        3 => "6.2",
        4 => "6.7",
        5 => "6.10",
        6 => "6.12",
        _ => "6.15",
    }
}

/// What a profile loses when `feature` is missing.
fn feature_loss(feature: Feature) -> &'static str {
    match feature {
        Feature::Filesystem => "[filesystem] read/write/exec rules are not enforced: the agent can touch every file its uid can",
        Feature::Truncate => "the agent could truncate files it may only read",
        Feature::TcpPorts => "[network] connect_tcp/bind_tcp are not enforced: the agent can reach any host and port",
        Feature::IoctlDev => "device ioctls are not narrowed (cordon works without this; no profile asks for it)",
        Feature::ScopeSignal => "Landlock does not stop signals to processes outside the sandbox (the pid namespace still hides their pids)",
        Feature::ScopeAbstractUnix => "the agent could connect to host services on abstract Unix sockets (D-Bus, X11, ...)",
    }
}

const LANDLOCK_FIX: &str = "build the kernel with CONFIG_SECURITY_LANDLOCK=y and list `landlock` in the `lsm=` boot parameter (e.g. lsm=landlock,lockdown,yama,integrity,apparmor)";

fn landlock_checks(host: &Host) -> Vec<Check> {
    let mut out = Vec::new();
    let abi = host.abi();
    let head = match (host.landlock_abi, host.abi_capped_from) {
        (Ok(abi), Some(real)) => Check::new(
            Status::Warn,
            format!("Landlock ABI {abi}"),
            format!("the kernel has ABI {real}, but {ABI_CAP_VAR}={abi} makes cordon use only {abi}; unset it for full protection"),
        ),
        (Err(_), Some(real)) => Check::new(
            Status::No,
            "Landlock",
            format!("the kernel has ABI {real}, but {ABI_CAP_VAR}=0 turns Landlock off; unset it"),
        )
        .required(),
        (Ok(abi), None) => Check::new(
            Status::Ok,
            format!("Landlock ABI {abi}"),
            "filesystem rules are enforced by the kernel",
        ),
        (Err(e), None) => Check::new(
            Status::No,
            "Landlock",
            format!(
                "unavailable: {}; profiles refuse to start (exit 125) unless they set best_effort; fix: {}",
                landlock_absence(e),
                LANDLOCK_FIX
            ),
        )
        .required(),
    };
    out.push(head);
    for f in Feature::ALL {
        let name = format!("  {f}");
        if abi >= f.min_abi() {
            out.push(Check::new(Status::Ok, name, "enforced"));
            continue;
        }
        let fix = format!(
            "needs Linux {}+ (Landlock ABI {}){}",
            landlock_kernel(f.min_abi()),
            f.min_abi(),
            if host.abi_capped_from.is_some() {
                format!(", or unset {ABI_CAP_VAR}")
            } else {
                String::new()
            }
        );
        let c = Check::new(
            if f.required() {
                Status::No
            } else {
                Status::Warn
            },
            name,
            format!("{}; {fix}", feature_loss(f)),
        );
        let c = if f.required() { c.required() } else { c };
        out.push(c);
    }
    out
}

fn seccomp_checks(f: &Facts) -> Vec<Check> {
    let filters = if f.seccomp_filters {
        Check::new(
            Status::Ok,
            "seccomp filters",
            "cordon's syscall deny-list is enforced",
        )
    } else {
        Check::new(
            Status::No,
            "seccomp filters",
            "unavailable: cordon cannot apply its syscall deny-list; build the kernel with CONFIG_SECCOMP_FILTER=y",
        )
    };
    let notif = if f.host.seccomp_user_notif {
        Check::new(
            Status::Ok,
            "seccomp user notification",
            "SECCOMP_RET_USER_NOTIF works: the supervisor sees denied syscalls as they happen",
        )
    } else {
        Check::new(
            Status::No,
            "seccomp user notification",
            "SECCOMP_RET_USER_NOTIF is missing (or its structs differ): cordon refuses to start; needs Linux 5.0+ with CONFIG_SECCOMP_FILTER=y",
        )
    };
    vec![filters.required(), notif.required()]
}

fn mode_check(host: &Host) -> Check {
    if host.privileged {
        Check::new(
            Status::Ok,
            "privileges",
            format!(
                "running as uid {} with CAP_SYS_ADMIN: privileged mode, pid and mount namespaces without a user namespace (the agent still drops every capability)",
                host.euid
            ),
        )
    } else {
        Check::new(
            Status::Ok,
            "privileges",
            format!(
                "running unprivileged (uid {}): cordon creates a user namespace to get pid and mount namespaces",
                host.euid
            ),
        )
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Fork => "fork",
        Step::DropPrivileges => "switching to the unprivileged uid",
        Step::Unshare => "unshare",
        Step::ForkInNamespace => "fork inside the new pid namespace",
        Step::PidOne => "becoming pid 1",
        Step::PrivateMounts => "making mounts private",
        Step::MountProc => "mounting /proc",
    }
}

fn failure(trial: &NsTrialResult) -> Option<String> {
    trial
        .first_failure()
        .map(|(s, e)| format!("{} failed: {e} (errno {})", step_name(s), e.0))
}

fn userns_checks(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let blockers = f.sysctls.blockers();
    let sysctl_status = if blockers.is_empty() {
        Status::Ok
    } else if f.host.privileged {
        Status::Warn
    } else {
        Status::No
    };
    let detail = if blockers.is_empty() {
        format!(
            "{}: nothing blocks unprivileged users",
            f.sysctls.describe()
        )
    } else {
        format!("unprivileged users are blocked by {}", blockers.join("; "))
    };
    out.push(Check::new(sysctl_status, "user namespace sysctls", detail));

    if f.host.privileged {
        let (status, detail) = match &f.unprivileged_trial {
            None => (Status::Warn, "not probed".to_string()),
            Some(t) => match failure(t) {
                None => (
                    Status::Ok,
                    "uid 65534 created user+pid+mount namespaces: cordon also works for unprivileged users here".to_string(),
                ),
                Some(why) => (
                    Status::Warn,
                    format!("as uid 65534, {why}: only root can run cordon here; {}", userns_fix()),
                ),
            },
        };
        out.push(Check::new(
            status,
            "user namespaces (unprivileged users)",
            detail,
        ));
    } else {
        let trial = &f.launch_trial;
        let check = match trial.step(Step::Unshare) {
            Some(Ok(())) => Check::new(
                Status::Ok,
                "user namespaces",
                format!("uid {} created user+pid+mount namespaces", f.host.euid),
            ),
            _ => Check::new(
                Status::No,
                "user namespaces",
                format!(
                    "{}: cordon cannot start as uid {}; {}",
                    failure(trial).unwrap_or_else(|| "the probe did not run".to_string()),
                    f.host.euid,
                    userns_fix()
                ),
            ),
        };
        out.push(check.required());
    }
    out
}

fn userns_fix() -> &'static str {
    "fix: sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0 where they exist), or run cordon as root"
}

fn namespace_checks(f: &Facts) -> Vec<Check> {
    let t = &f.launch_trial;
    let how = if f.host.privileged {
        "unshare(CLONE_NEWPID|CLONE_NEWNS)"
    } else {
        "unshare(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS)"
    };
    let blocked = |what: &str| -> String {
        format!(
            "not reached: {}",
            failure(t).unwrap_or_else(|| format!("{what} was not probed"))
        )
    };
    let pid = match (t.step(Step::Unshare), t.step(Step::PidOne)) {
        (Some(Ok(())), Some(Ok(()))) => Check::new(
            Status::Ok,
            "pid namespace",
            format!("{how} worked and the probe's child was pid 1: killing it kills the whole agent tree"),
        ),
        _ => Check::new(
            Status::No,
            "pid namespace",
            format!("{}; cordon relies on it to contain the agent's tree", blocked("pid")),
        ),
    };
    let mnt = match t.step(Step::PrivateMounts) {
        Some(Ok(())) => Check::new(
            Status::Ok,
            "mount namespace",
            "mounts made private inside it: masks and /proc stay in the sandbox",
        ),
        _ => Check::new(
            Status::No,
            "mount namespace",
            format!(
                "{}; cordon needs it for deny masks and its own /proc",
                blocked("mount")
            ),
        ),
    };
    let proc = match t.step(Step::MountProc) {
        Some(Ok(())) => Check::new(
            Status::Ok,
            "fresh /proc",
            "proc mounted (nosuid,nodev,noexec) in the new pid namespace: the agent sees only its own processes",
        ),
        Some(Err(e)) => Check::new(
            Status::No,
            "fresh /proc",
            format!(
                "mount proc failed: {e} (errno {}); typical inside a container whose /proc has masked paths (run it with a private /proc, e.g. `--security-opt systempaths=unconfined`)",
                e.0
            ),
        ),
        None => Check::new(Status::No, "fresh /proc", blocked("/proc")),
    };
    let net = match f.net_trial.step(Step::Unshare) {
        Some(Ok(())) => Check::new(
            Status::Ok,
            "network namespace",
            "created: profiles with allow_hosts run with only loopback, behind cordon's egress proxy",
        ),
        _ => Check::new(
            Status::Warn,
            "network namespace",
            format!(
                "{}: profiles with allow_hosts/deny_hosts will not run here (exit 125); port rules still work",
                failure(&f.net_trial).unwrap_or_else(|| "the probe did not run".to_string())
            ),
        ),
    };
    vec![pid.required(), mnt.required(), proc.required(), net]
}

fn cgroup_check(c: &CgroupFacts) -> Check {
    const NOTE: &str = "optional: cordon contains agents with a pid namespace, not cgroups";
    let layout = match &c.layout {
        Err(e) => {
            return Check::new(
                Status::Warn,
                "cgroup v2",
                format!("cannot read the mount table ({e}); {NOTE}"),
            )
        }
        Ok(l) => l,
    };
    let Some(mount) = &layout.v2_mount else {
        let mode = if layout.mode == CgroupMode::Legacy {
            "only cgroup v1 is mounted"
        } else {
            "no cgroup filesystem is mounted"
        };
        return Check::new(Status::Warn, "cgroup v2", format!("{mode}; {NOTE}"));
    };
    let mode = match layout.mode {
        CgroupMode::Hybrid => "hybrid (v1 controllers + cgroup2)",
        _ => "pure v2",
    };
    let kill = match &c.kill {
        CgroupKill::Present(p) => format!("cgroup.kill present ({})", p.display()),
        CgroupKill::KernelHasIt => {
            "cgroup.kill exists in child cgroups (kernel 5.14+; none exist yet to look at)"
                .to_string()
        }
        CgroupKill::KernelTooOld => "no cgroup.kill (needs Linux 5.14+)".to_string(),
        CgroupKill::Unknown => "cgroup.kill availability unknown".to_string(),
    };
    let create = if c.can_create {
        "this user may create child cgroups"
    } else {
        "this user may not create child cgroups"
    };
    let status = if matches!(c.kill, CgroupKill::Present(_) | CgroupKill::KernelHasIt) {
        Status::Ok
    } else {
        Status::Warn
    };
    Check::new(
        status,
        "cgroup v2",
        format!("{mode} at {}; {kill}; {create}; {NOTE}", mount.display()),
    )
}

fn pidfd_checks(f: &Facts) -> Vec<Check> {
    let open = match f.pidfd_open {
        Ok(()) => Check::new(
            Status::Ok,
            "pidfd_open",
            "cordon signals and waits on the agent through a pidfd (immune to pid reuse)",
        ),
        Err(e) => Check::new(
            Status::No,
            "pidfd_open",
            format!("failed: {e}; cordon launches with CLONE_PIDFD and signals with pidfd_send_signal: needs Linux 5.3+"),
        ),
    };
    let peer = match f.peer_pidfd {
        Ok(()) => Check::new(
            Status::Ok,
            "SO_PEERPIDFD",
            "the broker can pin a socket peer to its exact process",
        ),
        Err(e) => Check::new(
            Status::Warn,
            "SO_PEERPIDFD",
            format!("failed: {e}; the broker identifies peers by SO_PEERCRED pid only (Linux 6.5+ adds pidfds)"),
        ),
    };
    vec![open.required(), peer]
}

/// Every check, in report order.
pub fn checks(f: &Facts) -> Vec<Check> {
    let mut out = landlock_checks(&f.host);
    out.extend(seccomp_checks(f));
    out.push(mode_check(&f.host));
    out.extend(userns_checks(f));
    out.extend(namespace_checks(f));
    out.push(cgroup_check(&f.cgroup));
    out.extend(pidfd_checks(f));
    out
}

/// Whether every required check passed, and the summary line.
pub fn verdict(checks: &[Check]) -> (bool, String) {
    let missing: Vec<&str> = checks
        .iter()
        .filter(|c| c.required && c.status == Status::No)
        .map(|c| c.title.trim())
        .collect();
    let optional: Vec<&str> = checks
        .iter()
        .filter(|c| !c.required && c.status != Status::Ok)
        .map(|c| c.title.trim())
        .collect();
    if missing.is_empty() {
        let mut line = "profiles will run with full protection here".to_string();
        if !optional.is_empty() {
            line.push_str(&format!(
                " (optional, not available: {})",
                optional.join(", ")
            ));
        }
        (true, line)
    } else {
        (
            false,
            format!(
                "missing: {}; profiles refuse to start here (exit 125) unless they opt into best effort, and then run without them",
                missing.join(", ")
            ),
        )
    }
}

/// Renders the report: the header, one line per check, the summary.
pub fn render(kernel_release: &str, checks: &[Check]) -> (bool, String) {
    let mut out = format!("cordon doctor: {kernel_release}\n");
    for c in checks {
        out.push_str(&c.to_string());
        out.push('\n');
    }
    let (ok, summary) = verdict(checks);
    out.push_str(&summary);
    out.push('\n');
    (ok, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    const UNIFIED: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn ok_trial(steps: &[Step]) -> NsTrialResult {
        NsTrialResult {
            steps: steps.iter().map(|s| (*s, Ok(()))).collect(),
        }
    }

    const FULL: [Step; 6] = [
        Step::Fork,
        Step::Unshare,
        Step::ForkInNamespace,
        Step::PidOne,
        Step::PrivateMounts,
        Step::MountProc,
    ];

    fn host(abi: Result<u32, Errno>, privileged: bool) -> Host {
        Host {
            landlock_abi: abi,
            abi_capped_from: None,
            privileged,
            seccomp_user_notif: true,
            euid: if privileged { 0 } else { 1000 },
            egid: if privileged { 0 } else { 1000 },
        }
    }

    fn facts(host: Host) -> Facts {
        let privileged = host.privileged;
        Facts {
            kernel_release: "6.18.0".into(),
            host,
            seccomp_filters: true,
            launch_trial: ok_trial(&FULL),
            net_trial: ok_trial(&FULL[..2]),
            unprivileged_trial: privileged.then(|| ok_trial(&FULL[..5])),
            sysctls: UsernsSysctls {
                max_user_namespaces: Some(1000),
                ..UsernsSysctls::default()
            },
            cgroup: CgroupFacts {
                layout: Ok(layout_of(&parse_mountinfo(UNIFIED))),
                kill: CgroupKill::KernelHasIt,
                can_create: false,
            },
            pidfd_open: Ok(()),
            peer_pidfd: Ok(()),
        }
    }

    fn find<'a>(checks: &'a [Check], title: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.title.trim() == title)
            .unwrap_or_else(|| panic!("no check {title:?} in {checks:#?}"))
    }

    #[test]
    fn parses_mountinfo_and_tells_hybrid_from_unified() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[2].fstype, "cgroup");
        assert_eq!(mounts[2].super_options, "rw,cpu");
        let hybrid = layout_of(&mounts);
        assert_eq!(hybrid.mode, CgroupMode::Hybrid);
        assert_eq!(
            hybrid.v2_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let unified = layout_of(&parse_mountinfo(UNIFIED));
        assert_eq!(unified.mode, CgroupMode::Unified);
        assert_eq!(
            unified.v2_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup"))
        );
        let legacy: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            layout_of(&parse_mountinfo(&legacy)).mode,
            CgroupMode::Legacy
        );
        assert_eq!(layout_of(&parse_mountinfo("")).mode, CgroupMode::None);
    }

    #[test]
    fn mountinfo_escapes_and_garbage() {
        let text = "50 22 0:40 / /mnt/my\\040cg rw - cgroup2 none rw\ngarbage line\n1 2 3\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn reads_layout_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mountinfo");
        std::fs::write(&path, HYBRID).unwrap();
        assert_eq!(cgroup_layout(&path).unwrap().mode, CgroupMode::Hybrid);
        assert!(cgroup_layout(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn finds_cgroup_kill_in_own_or_child_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(
            find_cgroup_kill(root, Some("/"), Some((6, 18))),
            CgroupKill::KernelHasIt
        );
        assert_eq!(
            find_cgroup_kill(root, Some("/"), Some((5, 10))),
            CgroupKill::KernelTooOld
        );
        assert_eq!(find_cgroup_kill(root, None, None), CgroupKill::Unknown);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/cgroup.kill"), "").unwrap();
        assert_eq!(
            find_cgroup_kill(root, Some("/a/b"), None),
            CgroupKill::Present(root.join("a/b/cgroup.kill"))
        );
        std::fs::write(root.join("a/cgroup.kill"), "").unwrap();
        assert_eq!(
            find_cgroup_kill(root, Some("/"), None),
            CgroupKill::Present(root.join("a/cgroup.kill"))
        );
    }

    #[test]
    fn own_cgroup_and_kernel_version() {
        assert_eq!(
            own_v2_cgroup("1:cpu:/\n0::/user.slice/x\n").as_deref(),
            Some("/user.slice/x")
        );
        assert_eq!(own_v2_cgroup("1:cpu:/\n"), None);
        assert_eq!(kernel_version("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(kernel_version("5.4"), Some((5, 4)));
        assert_eq!(kernel_version("weird"), None);
    }

    #[test]
    fn sysctls_read_from_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
        std::fs::write(dir.path().join("user/max_user_namespaces"), "0\n").unwrap();
        std::fs::write(
            dir.path()
                .join("kernel/apparmor_restrict_unprivileged_userns"),
            "1\n",
        )
        .unwrap();
        let s = UsernsSysctls::read(dir.path());
        assert_eq!(s.max_user_namespaces, Some(0));
        assert_eq!(s.unprivileged_userns_clone, None);
        assert_eq!(s.apparmor_restrict, Some(1));
        assert_eq!(s.blockers().len(), 2);
    }

    #[test]
    fn full_host_passes() {
        for privileged in [false, true] {
            let checks = super::checks(&facts(host(Ok(7), privileged)));
            let (ok, text) = render("6.18.0", &checks);
            assert!(ok, "{text}");
            assert!(text.starts_with("cordon doctor: 6.18.0\n"), "{text}");
            assert!(text.contains("ok   Landlock ABI 7:"), "{text}");
            assert!(
                text.ends_with("profiles will run with full protection here\n"),
                "{text}"
            );
            assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
        }
    }

    #[test]
    fn old_landlock_names_what_is_lost() {
        let checks = super::checks(&facts(host(Ok(3), false)));
        let (ok, summary) = verdict(&checks);
        assert!(!ok);
        assert!(
            summary.contains("TCP bind/connect rules (Landlock ABI 4)"),
            "{summary}"
        );
        assert!(summary.contains("signal scoping"), "{summary}");
        // Device ioctl control is not required: a warning, not in "missing".
        assert!(!summary.contains("ioctl"), "{summary}");
        let tcp = find(&checks, "TCP bind/connect rules (Landlock ABI 4)");
        assert_eq!(tcp.status, Status::No);
        assert!(tcp.detail.contains("any host and port"));
        assert!(tcp.detail.contains("Linux 6.7+"));
        assert_eq!(
            find(&checks, "device ioctl control (Landlock ABI 5)").status,
            Status::Warn
        );
    }

    #[test]
    fn no_landlock_says_how_to_enable_it() {
        let checks = super::checks(&facts(host(Err(Errno(libc::EOPNOTSUPP)), false)));
        let ll = find(&checks, "Landlock");
        assert_eq!(ll.status, Status::No);
        assert!(ll.detail.contains("lsm="), "{}", ll.detail);
        assert!(!verdict(&checks).0);
    }

    #[test]
    fn capped_abi_is_a_warning_on_the_header() {
        let mut h = host(Ok(5), false);
        h.abi_capped_from = Some(7);
        let checks = super::checks(&facts(h));
        let head = find(&checks, "Landlock ABI 5");
        assert_eq!(head.status, Status::Warn);
        assert!(head.detail.contains(ABI_CAP_VAR));
    }

    #[test]
    fn blocked_user_namespaces_fail_only_when_unprivileged() {
        let blocked = NsTrialResult {
            steps: vec![
                (Step::Fork, Ok(())),
                (Step::Unshare, Err(Errno(libc::EPERM))),
            ],
        };
        let sysctls = UsernsSysctls {
            apparmor_restrict: Some(1),
            ..UsernsSysctls::default()
        };
        let mut f = facts(host(Ok(7), false));
        f.launch_trial = blocked.clone();
        f.sysctls = sysctls.clone();
        let checks = super::checks(&f);
        let userns = find(&checks, "user namespaces");
        assert_eq!(userns.status, Status::No);
        assert!(userns.detail.contains("errno 1"), "{}", userns.detail);
        assert_eq!(find(&checks, "pid namespace").status, Status::No);
        assert_eq!(find(&checks, "user namespace sysctls").status, Status::No);
        let (ok, summary) = verdict(&checks);
        assert!(!ok);
        assert!(summary.contains("user namespaces"), "{summary}");

        // Root does not need them: a warning for other users only.
        let mut f = facts(host(Ok(7), true));
        f.unprivileged_trial = Some(blocked);
        f.sysctls = sysctls;
        let checks = super::checks(&f);
        assert_eq!(
            find(&checks, "user namespaces (unprivileged users)").status,
            Status::Warn
        );
        assert_eq!(find(&checks, "user namespace sysctls").status, Status::Warn);
        let (ok, summary) = verdict(&checks);
        assert!(ok, "{summary}");
        assert!(summary.contains("optional, not available"), "{summary}");
    }

    #[test]
    fn proc_mount_failure_is_required() {
        let mut f = facts(host(Ok(7), false));
        f.launch_trial.steps.pop();
        f.launch_trial
            .steps
            .push((Step::MountProc, Err(Errno(libc::EPERM))));
        let checks = super::checks(&f);
        assert_eq!(find(&checks, "fresh /proc").status, Status::No);
        assert_eq!(find(&checks, "mount namespace").status, Status::Ok);
        assert!(!verdict(&checks).0);
    }

    #[test]
    fn optional_features_only_warn() {
        let mut f = facts(host(Ok(7), false));
        f.peer_pidfd = Err(Errno(libc::ENOPROTOOPT));
        f.cgroup.layout = Ok(layout_of(&[]));
        f.cgroup.kill = CgroupKill::Unknown;
        let checks = super::checks(&f);
        assert_eq!(find(&checks, "SO_PEERPIDFD").status, Status::Warn);
        assert_eq!(find(&checks, "cgroup v2").status, Status::Warn);
        let (ok, summary) = verdict(&checks);
        assert!(ok);
        assert!(summary.contains("SO_PEERPIDFD"), "{summary}");

        f.pidfd_open = Err(Errno(libc::ENOSYS));
        f.host.seccomp_user_notif = false;
        let (ok, summary) = verdict(&super::checks(&f));
        assert!(!ok);
        assert!(
            summary.contains("pidfd_open") && summary.contains("seccomp user notification"),
            "{summary}"
        );
    }
}
