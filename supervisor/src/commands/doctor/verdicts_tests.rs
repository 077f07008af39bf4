//! The doctor's verdicts on fake facts.
#![allow(clippy::unwrap_used)]

use super::verdicts::{self, *};
use cordon::host::cgroup::{layout_of, CgroupKill};
use cordon::host::kernel::UsernsSysctls;
use cordon::host::mountinfo::parse_mountinfo;
use cordon::host::{Host, ABI_CAP_VAR};
use cordon::sys::probe::{NsTrialResult, Step};
use cordon::sys::Errno;

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
        landlock_unknown: Default::default(),
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
fn full_host_passes() {
    for privileged in [false, true] {
        let checks = verdicts::checks(&facts(host(Ok(7), privileged)));
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
    let checks = verdicts::checks(&facts(host(Ok(3), false)));
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
    let checks = verdicts::checks(&facts(host(Err(Errno(libc::EOPNOTSUPP)), false)));
    let ll = find(&checks, "Landlock");
    assert_eq!(ll.status, Status::No);
    assert!(ll.detail.contains("lsm="), "{}", ll.detail);
    assert!(!verdict(&checks).0);
}

#[test]
fn capped_abi_is_a_warning_on_the_header() {
    let mut h = host(Ok(5), false);
    h.abi_capped_from = Some(7);
    let checks = verdicts::checks(&facts(h));
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
    let checks = verdicts::checks(&f);
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
    let checks = verdicts::checks(&f);
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
    let checks = verdicts::checks(&f);
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
    let checks = verdicts::checks(&f);
    assert_eq!(find(&checks, "SO_PEERPIDFD").status, Status::Warn);
    assert_eq!(find(&checks, "cgroup v2").status, Status::Warn);
    let (ok, summary) = verdict(&checks);
    assert!(ok);
    assert!(summary.contains("SO_PEERPIDFD"), "{summary}");

    f.pidfd_open = Err(Errno(libc::ENOSYS));
    f.host.seccomp_user_notif = false;
    let (ok, summary) = verdict(&verdicts::checks(&f));
    assert!(!ok);
    assert!(
        summary.contains("pidfd_open") && summary.contains("seccomp user notification"),
        "{summary}"
    );
}
