//! Launches and supervises the agent tree.
