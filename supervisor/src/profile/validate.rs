//! Cross-field rules of a profile, one function per rule.
