//! The MCP broker's core: everything between the agent's MCP client and
//! the real server that can be decided without a kernel.
//!
//! - [`frame`]: newline-delimited framing, bounded.
//! - [`message`]: JSON-RPC messages, parsed strictly, and error replies.
//! - [`path`]: the JSON paths of argument rules.
//! - [`rules`]: compiled argument rules and the decision per `tools/call`.
//! - [`relay`]: the state machine between the agent and the server: id
//!   mapping, `tools/list` filtering, calls to decide, timeouts.
//!
//! Pure: no kernel calls, no I/O. See docs/mcp.md.

pub mod frame;
pub mod message;
pub mod path;
pub mod relay;
pub mod rules;

pub use frame::{Frame, FrameReader};
pub use relay::{AgentStep, Ended, Expired, Relay, ServerStep, ToolCall};
pub use rules::{Quantifier, ServerPolicy};
