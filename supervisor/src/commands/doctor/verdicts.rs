//! `cordon doctor`'s verdicts: from probed host facts to one line per
//! check, and a summary. Pure (unit-tested on fake facts in
//! `verdicts_tests.rs`).

use std::fmt;

use cordon::host::cgroup::{CgroupKill, CgroupLayout, CgroupMode};
use cordon::host::kernel::UsernsSysctls;
use cordon::host::{landlock_absence, Host, ABI_CAP_VAR};
use cordon::sandbox::landlock::Feature;
use cordon::sys::probe::{NsTrialResult, Step};
use cordon::sys::Errno;

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
        7 => "6.15",
        8 => "7.0",
        _ => "7.1",
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
        Feature::ResolveUnix => "unreachable: cordon mediates connect() to pathname Unix sockets itself",
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
        if f == Feature::ResolveUnix {
            out.push(Check::new(
                Status::Ok,
                name,
                "not in this kernel; cordon enforces `[network] unix` itself (each connect() of the agent is checked by the supervisor and made on its behalf)",
            ));
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
