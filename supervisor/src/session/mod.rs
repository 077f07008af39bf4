//! One session, from its plan to its last record. `cordon run`'s agent,
//! a sub-agent (`cordon-shim spawn`), an observed `cordon learn` run and
//! (through `cordon run`) each of `cordon serve`'s agents are started,
//! supervised and ended by the same steps, in the same order:
//!
//! 1. [`Planned`]: the launch plan built and checked (the secret sources
//!    out of the agent's reach), the broker socket bound and the shim
//!    linked under each tool's name: nothing runs yet.
//! 2. [`Planned::start`]: the `session_start` record written (a session
//!    that cannot be recorded never starts), the sandbox launched, its
//!    refusal counter linked to the parent's, its egress proxy and its
//!    broker started. A failure after the launch kills the sandbox before
//!    it is reported.
//! 3. [`Started::supervise`]: until the agent's tree is gone.
//! 4. [`Started::finish`]: the proxy and broker stopped (calls in flight
//!    cancelled, secrets revoked), then the `divergence` and `session_end`
//!    records.

mod start;

use std::path::PathBuf;
use std::sync::Arc;

pub use start::{Approvers, Egress, Ended, Start, Started};

use crate::audit::AuditError;
use crate::broker;
use crate::host::Host;
use crate::process::LaunchError;
use crate::profile::{Environment, Location, Profile};
use crate::sandbox::{self, Plan, PlanError, Request};

/// Why a session could not be started. Each says what failed; none holds
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("the agent could reach the source of secret `{name}` ({}) through the grant at {grant}; narrow the grant", path.display())]
    SecretSource {
        name: String,
        path: PathBuf,
        grant: Location,
    },
    #[error("cannot set up the broker: {0}")]
    BrokerSocket(std::io::Error),
    #[error("cannot write the audit log: {0}")]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Launch(#[from] LaunchError),
    #[error("cannot hold the sandbox's pidfd: {0}")]
    Pidfd(std::io::Error),
    #[error("cannot start the egress proxy: {0}")]
    Proxy(std::io::Error),
    #[error("cannot start the broker: {0}")]
    Broker(String),
}

impl StartError {
    /// The `cordon run` exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Plan(e) => e.exit_code(),
            _ => crate::process::EXIT_SETUP_FAILED,
        }
    }
}

/// A session planned and checked; nothing of it runs yet.
pub struct Planned {
    pub profile: Arc<Profile>,
    pub plan: Plan,
    /// The broker's bound socket and shim links, for a brokered profile.
    socket: Option<broker::Prepared>,
    /// An observed run (`cordon learn`): no broker, no session records.
    observed: bool,
    host: Host,
    /// `cordon-shim`, which sub-agents of this session need too.
    shim: Option<PathBuf>,
}

impl Planned {
    /// Plans a confined session of `profile`.
    pub fn confined(
        profile: Arc<Profile>,
        request: &Request,
        host: &Host,
    ) -> Result<Planned, StartError> {
        let plan = sandbox::build(&profile, request, host, &|name| std::env::var_os(name))?;
        // Checked again now that {workspace}, {home} and {tmp} are known:
        // the agent must not be able to read or change where a secret
        // comes from.
        if let Some((name, path, grant)) =
            crate::profile::secret_source_reachable(&profile, &plan.placeholders)
                .into_iter()
                .next()
        {
            return Err(StartError::SecretSource { name, path, grant });
        }
        // The socket and the shim links exist before the agent does.
        let socket = if sandbox::plan::brokered(&profile) {
            let shim = request.shim.as_deref().ok_or(PlanError::NoShim)?;
            let prepared = broker::prepare(
                &profile,
                &plan.session.shim_dir(),
                &plan.session.socket_path(),
                shim,
            )
            .map_err(StartError::BrokerSocket)?;
            Some(prepared)
        } else {
            None
        };
        Ok(Planned {
            profile,
            plan,
            socket,
            observed: false,
            host: host.clone(),
            shim: request.shim.clone(),
        })
    }

    /// Plans an observed, unconfined run (`cordon learn`): `profile` is
    /// the base it starts from, for its environment and stop grace only.
    pub fn observed(
        profile: Arc<Profile>,
        environment: &Environment,
        hosts: bool,
        request: &Request,
        host: &Host,
    ) -> Result<Planned, StartError> {
        let plan =
            sandbox::build_observed(environment, hosts, request, host, &|n| std::env::var_os(n))?;
        Ok(Planned {
            profile,
            plan,
            socket: None,
            observed: true,
            host: host.clone(),
            shim: None,
        })
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.plan.session.id
    }

    /// The workload identity of the session.
    pub fn identity(&self) -> String {
        self.plan.session.identity(&self.profile.name)
    }
}
