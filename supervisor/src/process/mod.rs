//! Launching the agent under a plan and supervising its process tree until
//! it exits or leaves its profile.
//!
//! Containment: the agent runs under an init process that is pid 1 of a
//! new pid namespace. When init exits, or is killed, the kernel kills every
//! process left in that namespace, however it forked, setsid'd or
//! daemonized. Init holds PR_SET_PDEATHSIG(SIGKILL), so the same happens
//! when cordon itself is killed.

pub mod exec_check;
pub mod kill;
pub mod launch;
pub mod mediate;
pub mod notices;
pub mod outcome;
pub mod own_sandbox;
pub mod refusals;
pub mod supervise;

pub use kill::Killer;
pub use launch::{launch, Io, LaunchError, Running};
pub use notices::Notices;
pub use outcome::{Outcome, Violation, EXIT_DIVERGED, EXIT_SETUP_FAILED};
pub use refusals::{Charged, Refusals};
pub use supervise::{supervise, ControlEvent, ExecPolicy, Observer, Policy, Stops, SuperviseError};
