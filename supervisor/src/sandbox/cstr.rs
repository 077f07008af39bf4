//! Paths and arguments as the C strings the child passes to the kernel.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::PlanError;

pub(crate) fn cstring(bytes: &[u8]) -> Result<CString, PlanError> {
    CString::new(bytes).map_err(|_| PlanError::Nul(String::from_utf8_lossy(bytes).into_owned()))
}

pub(crate) fn path_cstring(p: &Path) -> Result<CString, PlanError> {
    cstring(p.as_os_str().as_bytes())
}
