//! How a sandboxed run ended, and what `cordon run` exits with.

use crate::sandbox::{Command, Confined};
use crate::sys::child::Stage;
use crate::sys::Errno;

/// Exit status when cordon killed the agent for leaving its profile.
pub const EXIT_DIVERGED: u8 = 86;
/// Exit status when cordon failed before the agent started.
pub const EXIT_SETUP_FAILED: u8 = 125;

/// Why a sandbox was killed: which process did what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pid: u32,
    /// Reads after "pid N", e.g. "called `ptrace`, which the profile denies".
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent exited with this status.
    Exited(i32),
    /// The agent died of this signal.
    Signaled(i32),
    /// Sandbox setup failed before the agent's command ran.
    SetupFailed {
        stage: Option<Stage>,
        index: usize,
        errno: Errno,
    },
    /// The command could not be executed.
    ExecFailed(Errno),
    /// cordon killed the tree for a violation.
    Diverged(Violation),
    /// Killed at its deadline (a tool call's timeout).
    TimedOut,
}

impl Outcome {
    /// The `cordon run` exit status (see the README's table).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Exited(c) => u8::try_from(*c & 0xff).unwrap_or(u8::MAX),
            Outcome::Signaled(s) => u8::try_from(128 + (*s & 0x7f)).unwrap_or(u8::MAX),
            Outcome::SetupFailed { .. } => EXIT_SETUP_FAILED,
            Outcome::ExecFailed(e) if e.0 == libc::ENOENT => 127,
            Outcome::ExecFailed(_) => 126,
            Outcome::Diverged(_) => EXIT_DIVERGED,
            Outcome::TimedOut => 128 + 9,
        }
    }

    /// The line cordon prints for outcomes the agent did not report itself.
    pub fn message(&self, plan: &Confined, command: &Command) -> Option<String> {
        match self {
            Outcome::Exited(_) | Outcome::Signaled(_) | Outcome::Diverged(_) => None,
            Outcome::TimedOut => Some("killed at its time limit".into()),
            Outcome::ExecFailed(e) => {
                let exe = command.exe.to_string_lossy();
                let hint = if e.0 == libc::EACCES {
                    " (is it, and its interpreter, under [filesystem] exec in the profile?)"
                } else {
                    ""
                };
                Some(format!("cannot execute `{exe}`: {e}{hint}"))
            }
            Outcome::SetupFailed {
                stage,
                index,
                errno,
            } => Some(format!(
                "sandbox setup failed: {}: {errno}",
                describe_stage(*stage, *index, plan, command)
            )),
        }
    }
}

fn describe_stage(
    stage: Option<Stage>,
    index: usize,
    plan: &Confined,
    command: &Command,
) -> String {
    let rule_path = |list: &[(crate::profile::Location, std::path::PathBuf)]| {
        list.get(index).map_or_else(String::new, |(origin, path)| {
            format!(" `{}` ({origin})", path.display())
        })
    };
    let Some(stage) = stage else {
        return "an unknown step".to_string();
    };
    match stage {
        Stage::Lifeline => "watching the supervisor".into(),
        Stage::Setgroups | Stage::UidMap | Stage::GidMap => {
            "mapping the user into the user namespace".into()
        }
        Stage::PrivateMounts => "making the mount namespace private".into(),
        Stage::MaskTmpfs | Stage::MaskFiles | Stage::MaskRemount => {
            "preparing the deny masks".into()
        }
        Stage::MaskBind => format!("masking denied path{}", rule_path(&plan.mask_origins)),
        Stage::ShimBind => format!(
            "putting the broker's shim over the declared tool path `{}`",
            plan.shadows
                .get(index)
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned())
        ),
        Stage::MountProc => "mounting /proc for the sandbox's pid namespace".into(),
        Stage::Fork => "forking the agent".into(),
        Stage::Rlimit => format!("setting resource limit #{index} from [limits]"),
        Stage::Securebits | Stage::CapBound | Stage::CapAmbient | Stage::Capset => {
            "dropping capabilities".into()
        }
        Stage::NoNewPrivs => "setting no_new_privs".into(),
        Stage::LandlockOpen => format!(
            "opening Landlock path{}",
            plan.landlock
                .as_ref()
                .map_or_else(String::new, |l| rule_path(&l.origins))
        ),
        Stage::LandlockRule => format!(
            "adding Landlock rule for{}",
            plan.landlock
                .as_ref()
                .map_or_else(String::new, |l| rule_path(&l.origins))
        ),
        Stage::LandlockRestrict => "enforcing Landlock".into(),
        Stage::Seccomp => "installing the seccomp filter".into(),
        Stage::SendListener => "handing the seccomp listener to the supervisor".into(),
        Stage::LoopbackUp => "bringing up loopback in the sandbox's network namespace".into(),
        Stage::EgressListen => "listening for the egress proxy inside the sandbox".into(),
        Stage::SendEgress => "handing the egress proxy's socket to the supervisor".into(),
        Stage::Chdir => format!("entering the workspace `{}`", command.cwd.to_string_lossy()),
        Stage::Stdio => "connecting the caller's stdin, stdout and stderr".into(),
        Stage::KeepFds => "keeping the secret files open for the tool".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Signaled(libc::SIGTERM).exit_code(), 143);
        assert_eq!(Outcome::ExecFailed(Errno(libc::ENOENT)).exit_code(), 127);
        assert_eq!(Outcome::ExecFailed(Errno(libc::EACCES)).exit_code(), 126);
        let v = Violation {
            pid: 1,
            what: "called `ptrace`".into(),
        };
        assert_eq!(Outcome::Diverged(v).exit_code(), 86);
        let s = Outcome::SetupFailed {
            stage: None,
            index: 0,
            errno: Errno(1),
        };
        assert_eq!(s.exit_code(), 125);
    }
}
