//! The broker's policy engine: compiled argv rules of the profile's tools,
//! and the decision for one call.
//!
//! Pure: no kernel calls, no I/O. Argv patterns are described in
//! docs/profiles.md; deny beats approve beats allow, whatever the order the
//! rules are written in, and a call no rule matches is denied.

mod canonical;
pub mod cedar;
mod decide;
pub mod grammar;
mod lint;
mod pattern;
mod seq;
mod spec;
mod values;

pub use canonical::{canonicalize, Canonical, Hit, Unclassified, Why};
pub use decide::{render_call, Decision, Policy, PolicyError, RuleRef, Verdict};
pub use pattern::{compile_pattern, Pattern, PatternError};
pub use values::{check_option_rule, CompiledGrammar, OptionRuleError};

pub(crate) use decide::render_tokens;

#[cfg(test)]
mod argv_tests;
#[cfg(test)]
mod canonical_proptests;
#[cfg(test)]
mod canonical_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
