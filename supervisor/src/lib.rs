//! cordon: a sandbox supervisor for AI agents on Linux.
//!
//! - [`profile`]: TOML capability profiles, parsed and checked (pure).
//! - [`policy`]: the broker's argv rules, compiled, and the decision per call (pure).
//! - [`sandbox`]: turns a profile into a launch plan: Landlock rules,
//!   seccomp program, masks, environment (pure).
//! - [`host`]: what this host is and offers (kernel features, mounts,
//!   cgroups), read once.
//! - [`process`]: launches the agent under that plan and supervises its
//!   tree until it exits or diverges.
//! - [`audit`]: the hash-chained JSONL audit log: records, appending,
//!   verification.
//! - [`broker`]: serves the shim's calls: peer check, decision, record,
//!   the tool run under its own sandbox.
//! - [`secrets`]: secret values (zeroed, never printed) and the redactor
//!   that masks their forms in tool output (pure).
//! - [`egress`]: host rules and the HTTP proxy that decides each outbound
//!   connection of a sandbox that has them.
//! - [`daemon`]: `cordon serve`: agents supervised as child sessions,
//!   systemd notify and journald, the operator control socket.
//! - [`learn`]: `cordon learn`, a profile written from an observed run.
//! - [`session`]: one session's life, from its plan to its last record,
//!   for `cordon run`, sub-agents and `cordon learn` alike.
//! - [`sys`]: every raw syscall and `unsafe` block, and nothing else.

pub mod approval;
pub mod audit;
pub mod broker;
pub mod daemon;
pub mod egress;
pub mod host;
pub mod identity;
pub mod learn;
pub mod mcp;
pub mod policy;
pub mod process;
pub mod profile;
pub mod sandbox;
pub mod secrets;
pub mod session;
pub mod sys;
