//! The sandbox: turns a profile into a launch plan (Landlock rules, seccomp
//! program, deny masks, environment, session directories) and probes what
//! the host can enforce. Everything here is safe code; the kernel calls are
//! in `crate::sys`.

pub mod confine;
pub mod env;
pub mod host;
pub mod landlock;
pub mod plan;
pub mod probe_host;
pub mod seccomp;
pub mod session_dir;

pub use confine::{Confined, Confinement};
pub use host::Host;
pub use plan::{build, build_observed, Command, Plan, PlanError, Request};
