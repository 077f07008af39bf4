//! cordon-probe: runs inside the sandbox and attempts one thing per call.
fn main() {}
