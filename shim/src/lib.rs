//! cordon-shim: the client an agent executes instead of a brokered tool,
//! and the broker protocol it shares with the supervisor.
//!
//! The shim holds no policy: it forwards its argv byte-exact, its working
//! directory and environment, and its stdio descriptors, then waits for the
//! supervisor's answer and exits with the tool's status.

pub mod protocol;
