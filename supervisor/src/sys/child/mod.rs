//! The code between clone and execve.
//!
//! It runs in a forked copy of the supervisor, so it must be
//! async-signal-safe: no allocation, no locks, no panics that unwind. Every
//! input is prepared by the parent in a [`ChildSpec`] (C strings, pointer
//! arrays, a compiled BPF program); here we only issue raw syscalls and, on
//! failure, write a fixed-size [`Report`] naming the stage and errno.
//!
//! Two processes run this code, each walking its list of steps in
//! [`steps`] (the order is stated there once, and tested):
//! - **init** ([`init`]), pid 1 of the new pid namespace: sets up the user,
//!   mount and network namespaces, clones the agent, forwards stop signals
//!   to it, reaps orphans, and exits with the agent's status;
//! - **the agent** ([`agent`]), init's child: drops capabilities, sets
//!   no_new_privs, applies Landlock and seccomp, and executes the command.
//!
//! One file per concern: [`ids`] (user maps), [`mounts`] (masks, /proc),
//! [`net`] (loopback, the egress listener), [`creds`] (rlimits,
//! capabilities, no_new_privs), [`landlock`] (the domain), [`report`] (the
//! report pipe).

mod agent;
mod creds;
mod ids;
mod init;
mod landlock;
mod mounts;
mod net;
mod report;
mod spec;
pub mod steps;

pub use init::run_init;
pub use report::{Report, ReportKind, Stage, REPORT_SIZE};
pub use spec::{ChildSpec, EgressSpec, LandlockSpec, MaskKind, MaskMount, MaskSource, RulePath};
