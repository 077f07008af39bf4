//! Turns a profile into a launch plan.
