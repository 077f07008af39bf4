//! The broker's policy engine: compiled argv rules of the profile's tools,
//! and the decision for one call.
//!
//! Pure: no kernel calls, no I/O. Argv patterns are described in
//! docs/profiles.md; deny beats approve beats allow, whatever the order the
//! rules are written in, and a call no rule matches is denied.

pub mod cedar;
mod decide;
mod pattern;
mod seq;

pub use decide::{Decision, Policy, RuleRef, Verdict};
pub use pattern::{compile_pattern, Pattern, PatternError};

pub(crate) use decide::render_tokens;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
