//! Planning a session from a profile.

use super::*;

#[test]
fn resolves_commands_like_execvp() {
    let here = Path::new("/somewhere");
    assert_eq!(
        resolve_command(OsStr::new("sh"), "/nonexistent:/bin", here).unwrap(),
        PathBuf::from("/bin/sh")
    );
    assert_eq!(
        resolve_command(OsStr::new("./agent.py"), "/bin", here).unwrap(),
        PathBuf::from("/somewhere/./agent.py")
    );
    assert!(matches!(
        resolve_command(OsStr::new("no-such-program-xyz"), "/bin:/usr/bin", here),
        Err(PlanError::CommandNotFound { .. })
    ));
}
