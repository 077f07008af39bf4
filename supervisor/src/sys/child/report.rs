//! The report pipe: fixed-size records that name the step that failed
//! (and its errno), or the agent's exit status; and the few helpers every
//! step uses to fail without running a destructor.

use std::ffi::CStr;
use std::os::fd::RawFd;

/// What a report record says.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    SetupFailed = 1,
    ExecFailed = 2,
    AgentExited = 3,
}

/// Declares the setup steps once: the enum (numbered from 1, as sent on
/// the report pipe) and the lookup from that number.
macro_rules! stages {
    ($($stage:ident),+ $(,)?) => {
        /// The setup step that failed.
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Stage {
            $($stage),+
        }

        impl Stage {
            pub fn from_u32(v: u32) -> Option<Stage> {
                [$(Stage::$stage),+].into_iter().find(|s| *s as u32 + 1 == v)
            }

            /// The number sent on the report pipe (never 0).
            pub fn code(self) -> u32 {
                self as u32 + 1
            }
        }
    };
}

stages! {
    Lifeline,
    Setgroups,
    UidMap,
    GidMap,
    PrivateMounts,
    MaskTmpfs,
    MaskFiles,
    MaskRemount,
    MaskBind,
    ShimBind,
    MountProc,
    Fork,
    Rlimit,
    Securebits,
    CapBound,
    CapAmbient,
    Capset,
    NoNewPrivs,
    LandlockOpen,
    LandlockRule,
    LandlockRestrict,
    Seccomp,
    SendListener,
    LoopbackUp,
    EgressListen,
    SendEgress,
    Chdir,
    Stdio,
    KeepFds,
}

/// One fixed-size record on the report pipe: written atomically (16 bytes
/// is far below PIPE_BUF), so records from init and agent never interleave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub kind: u32,
    pub stage: u32,
    /// Index into the spec's list the stage worked on (mask, rule, rlimit).
    pub index: u32,
    /// errno, or the raw wait status for AgentExited.
    pub value: u32,
}

pub const REPORT_SIZE: usize = 16;

impl Report {
    pub fn encode(&self) -> [u8; REPORT_SIZE] {
        let mut b = [0u8; REPORT_SIZE];
        b[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        b[4..8].copy_from_slice(&self.stage.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b[12..16].copy_from_slice(&self.value.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; REPORT_SIZE]) -> Report {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Report {
            kind: word(0),
            stage: word(4),
            index: word(8),
            value: word(12),
        }
    }
}

pub(super) fn errno() -> u32 {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() as u32 }
}

pub(super) fn report(fd: RawFd, kind: ReportKind, stage: u32, index: usize, value: u32) {
    let rec = Report {
        kind: kind as u32,
        stage,
        index: u32::try_from(index).unwrap_or(u32::MAX),
        value,
    }
    .encode();
    loop {
        // SAFETY: writes REPORT_SIZE bytes from a live stack array.
        let n = unsafe { libc::write(fd, rec.as_ptr().cast(), REPORT_SIZE) };
        if n >= 0 || errno() != libc::EINTR as u32 {
            return;
        }
    }
}

/// Reports a failed stage and exits 125 without running any destructor.
pub(super) fn fail(fd: RawFd, stage: Stage, index: usize) -> ! {
    fail_errno(fd, stage, index, errno())
}

/// Like [`fail`], for errors whose errno was already captured.
pub(super) fn fail_errno(fd: RawFd, stage: Stage, index: usize, errno: u32) -> ! {
    report(fd, ReportKind::SetupFailed, stage.code(), index, errno);
    exit(125)
}

pub(super) fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing else runs.
    unsafe { libc::_exit(code) }
}

pub(super) fn write_file(path: &CStr, data: &CStr) -> bool {
    // SAFETY: `path` is NUL-terminated; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let bytes = data.to_bytes();
    // SAFETY: writes `bytes`, a live slice, to the fd we opened.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    // SAFETY: closes the fd we opened.
    unsafe { libc::close(fd) };
    n >= 0 && n.unsigned_abs() == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_through_the_report_pipe() {
        assert_eq!(Stage::from_u32(0), None);
        for code in 1..=Stage::KeepFds.code() {
            let stage = Stage::from_u32(code).expect("every code up to the last names a stage");
            assert_eq!(stage.code(), code);
        }
        assert_eq!(Stage::from_u32(Stage::KeepFds.code() + 1), None);
        let r = Report {
            kind: 1,
            stage: Stage::Chdir.code(),
            index: 7,
            value: 13,
        };
        assert_eq!(Report::decode(&r.encode()), r);
    }
}
