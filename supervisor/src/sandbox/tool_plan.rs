//! A brokered tool's sandbox, planned once per session (its calls differ
//! only in their private HOME and TMPDIR): cordon's default tool sandbox
//! (the agent's grants, `profile::default_tool_sandbox`) plus the tool's
//! own `[tools.NAME.sandbox]`, the tool's binary, the shim (a tool reaches
//! other tools only through the broker), what the loader needs for all
//! of its programs, and the profile's denies except those it unmasks.

use std::path::{Path, PathBuf};

use super::error::PlanError;
use super::loader::{loader_grants, LoaderCache};
use crate::profile::{
    default_tool_sandbox, Filesystem, Location, Network, PathRule, PathTemplate, Placeholders,
    Profile, Tool, DEFAULT_TOOL_SANDBOX_FILE,
};

/// What a tool's calls run under, but for the call's own directories.
#[derive(Debug, Clone)]
pub struct ToolPlan {
    pub filesystem: Filesystem,
    pub network: Network,
    /// The dynamic loaders (executable as interpreters only).
    pub interpreters: Vec<PathBuf>,
    /// The other tools' paths, the shim in this tool's sandbox.
    pub shadows: Vec<PathBuf>,
}

fn cordon_rule(path: &Path, why: &str) -> Result<PathRule, PlanError> {
    Ok(PathRule {
        path: PathTemplate::parse(&path.to_string_lossy())
            .map_err(|_| PlanError::Nul(path.display().to_string()))?,
        optional: false,
        origin: Location::whole_file(Path::new(&format!("{DEFAULT_TOOL_SANDBOX_FILE}: {why}"))),
    })
}

/// Plans `tool`'s sandbox in `profile`'s session. `values` are the
/// session's placeholders (the loader looks at programs in them).
pub fn tool_plan(
    profile: &Profile,
    tool: &Tool,
    shim: Option<&Path>,
    values: &Placeholders,
    loader: &mut LoaderCache,
) -> Result<ToolPlan, PlanError> {
    let own = &tool.sandbox;
    let mut fs = if own.inherit_defaults {
        let d = default_tool_sandbox(&profile.filesystem);
        Filesystem {
            read: d.read,
            write: d.write,
            exec: d.exec,
            deny: Vec::new(),
        }
    } else {
        Filesystem::default()
    };
    fs.read.extend(own.read.iter().cloned());
    fs.write.extend(own.write.iter().cloned());
    fs.exec.extend(own.exec.iter().cloned());
    // The tool may always execute itself.
    fs.exec.push(PathRule {
        path: PathTemplate::parse(&tool.path.to_string_lossy())
            .map_err(|_| PlanError::Nul(tool.path.display().to_string()))?,
        optional: false,
        origin: tool.origin.clone(),
    });
    if let Some(shim) = shim {
        fs.exec
            .push(cordon_rule(shim, "the shim, for calls to other tools")?);
    }
    // The profile's denies hold for tools too (else a tool that reads or
    // runs workspace content is the agent's way around them), except the
    // entries this tool unmasks.
    fs.deny = profile
        .filesystem
        .deny
        .iter()
        .filter(|d| !own.unmask.iter().any(|u| u.path == d.path))
        .cloned()
        .collect();
    // What the tool's table adds must not reach the other tools' bytes
    // (the agent's own grants, which it inherits, were checked already).
    let shadows = super::shadow::shadows(profile, Some(&tool.name), shim);
    let extras = Filesystem {
        read: own.read.clone(),
        write: fs.write.clone(),
        exec: own.exec.clone(),
        deny: fs.deny.clone(),
    };
    let copies = super::copies::scan_except(profile, &extras, values, &shadows, Some(&tool.name));
    if let Some(found) = copies.found.into_iter().next() {
        return Err(PlanError::ToolReachable(Box::new(found)));
    }
    let programs: Vec<PathBuf> = fs.exec.iter().map(|r| r.path.expand(values)).collect();
    let needs = loader_grants(programs.iter().map(PathBuf::as_path), loader);
    fs.exec.extend(needs.exec);
    fs.read.extend(needs.read);
    Ok(ToolPlan {
        filesystem: fs,
        network: own.network(),
        interpreters: needs.interpreters,
        shadows,
    })
}
