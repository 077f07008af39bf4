//! Raw syscalls and every unsafe block of cordon.
