//! The sandbox: turns a profile into a launch plan (Landlock rules, seccomp
//! program, deny masks, environment, session directories) and probes what
//! the host can enforce. Everything here is safe code; the kernel calls are
//! in `crate::sys`.

mod big_dirs;
pub mod confine;
pub mod copies;
mod cstr;
pub mod env;
pub mod error;
pub mod home;
pub mod host_cache;
pub mod landlock;
pub mod loader;
pub mod netpolicy;
pub mod plan;
pub mod proxied;
pub mod seccomp;
pub mod session_dir;
pub mod shadow;
pub mod tool_plan;

pub use confine::{Confined, Confinement};
pub use error::PlanError;
pub use plan::{build, build_observed, Command, Plan, Request};
