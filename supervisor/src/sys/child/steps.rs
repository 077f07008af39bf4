//! The order of the steps between clone and exec, stated once. Init and
//! the agent each walk their list; the order carries the security
//! argument (masks before the rules that must see them, no_new_privs
//! before Landlock and seccomp, the filter last before exec), so the
//! tests below check it as data rather than end to end.

/// What init does, in order, before it becomes the agent's reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStep {
    /// Close the parent's channel ends; die with the supervisor
    /// (PR_SET_PDEATHSIG) and check it is still there.
    Lifeline,
    /// In a new user namespace: keep the caller's ids (setgroups deny,
    /// uid_map, gid_map).
    UserMaps,
    /// In a new mount namespace: private propagation, the deny masks, a
    /// fresh /proc.
    Mounts,
    /// In a new network namespace: loopback up, the proxy's listener.
    Egress,
    /// memfds non-executable in this pid namespace.
    MemfdNoexec,
    /// Every signal blocked: init takes them with sigwaitinfo.
    BlockSignals,
    /// The agent, cloned vfork-style; it runs [`AGENT_STEPS`].
    CloneAgent,
}

/// What the agent does, in order, ending in exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStep {
    /// Close init's lifeline; default signal dispositions, empty mask.
    Signals,
    /// Resource limits (may lower hard limits; needs no capability).
    Rlimits,
    /// Every capability of every set; securebits locked.
    DropCapabilities,
    NoNewPrivs,
    /// The ruleset's path rules, added here so they bind to the inodes
    /// this mount namespace shows, then enforced.
    Landlock,
    /// The filter installed, its listener sent to the supervisor.
    Seccomp,
    /// Into the working directory by path, under the masks and the domain.
    Chdir,
    /// The caller's stdin, stdout and stderr.
    Stdio,
    /// Everything but 0-2 close-on-exec, except descriptors to keep.
    KeepFds,
    Exec,
}

pub const INIT_STEPS: [InitStep; 7] = [
    InitStep::Lifeline,
    InitStep::UserMaps,
    InitStep::Mounts,
    InitStep::Egress,
    InitStep::MemfdNoexec,
    InitStep::BlockSignals,
    InitStep::CloneAgent,
];

pub const AGENT_STEPS: [AgentStep; 10] = [
    AgentStep::Signals,
    AgentStep::Rlimits,
    AgentStep::DropCapabilities,
    AgentStep::NoNewPrivs,
    AgentStep::Landlock,
    AgentStep::Seccomp,
    AgentStep::Chdir,
    AgentStep::Stdio,
    AgentStep::KeepFds,
    AgentStep::Exec,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn init_at(s: InitStep) -> usize {
        INIT_STEPS.iter().position(|x| *x == s).unwrap()
    }

    fn agent_at(s: AgentStep) -> usize {
        AGENT_STEPS.iter().position(|x| *x == s).unwrap()
    }

    #[test]
    fn init_sets_up_every_namespace_before_the_agent_exists() {
        use InitStep::*;
        // PDEATHSIG first: from then on cordon's death kills init.
        assert_eq!(INIT_STEPS[0], Lifeline);
        // Mounting needs the user namespace's ids in place.
        assert!(init_at(UserMaps) < init_at(Mounts));
        // The agent inherits namespaces, masks, the memfd setting and the
        // blocked mask (which it clears itself), so all come first.
        for s in [UserMaps, Mounts, Egress, MemfdNoexec, BlockSignals] {
            assert!(init_at(s) < init_at(CloneAgent), "{s:?}");
        }
        assert_eq!(INIT_STEPS[INIT_STEPS.len() - 1], CloneAgent);
    }

    #[test]
    fn the_agent_is_confined_before_it_touches_anything_of_the_caller() {
        use AgentStep::*;
        // Signals as a plain exec would leave them, before anything can fail.
        assert_eq!(AGENT_STEPS[0], Signals);
        // Raising a limit needs CAP_SYS_RESOURCE: limits before the drop.
        assert!(agent_at(Rlimits) < agent_at(DropCapabilities));
        // Landlock and an unprivileged seccomp filter need no_new_privs,
        // and the capability drop must happen before either.
        assert!(agent_at(DropCapabilities) < agent_at(NoNewPrivs));
        assert!(agent_at(NoNewPrivs) < agent_at(Landlock));
        assert!(agent_at(NoNewPrivs) < agent_at(Seccomp));
        // The filter does not allow the Landlock syscalls' failure modes
        // to be probed: Landlock is enforced before it.
        assert!(agent_at(Landlock) < agent_at(Seccomp));
        // The working directory is entered under the domain and the masks,
        // and the caller's descriptors arrive only in a confined process.
        for s in [Chdir, Stdio, KeepFds] {
            assert!(agent_at(Seccomp) < agent_at(s), "{s:?}");
        }
        // KeepFds marks everything close-on-exec first: stdio must already
        // be in place at 0-2.
        assert!(agent_at(Stdio) < agent_at(KeepFds));
        assert_eq!(AGENT_STEPS[AGENT_STEPS.len() - 1], Exec);
    }

    #[test]
    fn every_step_is_listed_once() {
        for (i, a) in INIT_STEPS.iter().enumerate() {
            assert!(!INIT_STEPS[i + 1..].contains(a), "{a:?}");
        }
        for (i, a) in AGENT_STEPS.iter().enumerate() {
            assert!(!AGENT_STEPS[i + 1..].contains(a), "{a:?}");
        }
    }
}
