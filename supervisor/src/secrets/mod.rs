//! Secrets: the value type and the masking of tool output.
//!
//! - [`SecretValue`]: a value's bytes, zeroed on drop, never printed.
//! - [`Redactor`]: masks every known form of a set of values in a tool's
//!   output, as a stream. A last line of defence: see [`redact`] for what
//!   it catches and what it cannot.
//!
//! - [`provider`]: fetching a value when a call needs it, and revoking it.
//! - [`placeholder`]: what a process holds instead of a secret that
//!   cordon's egress proxy injects (`deliver = "proxy"`).
//!
//! `value`, `forms` and `redact` are pure: no kernel calls, no I/O.

mod forms;
pub mod placeholder;
pub mod provider;
pub mod redact;
mod value;

pub use placeholder::Placeholder;
pub use redact::{RedactError, RedactStream, Redactor, MARKER, MIN_MASKED_LEN};
pub use value::SecretValue;
