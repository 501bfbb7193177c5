//! The child side of `crate::child`: runs the hidden child this process was started
//! as, prints its one error line, and exits with the status error.rs gives it.

use std::process::ExitCode;

use crate::ceremony::so_step;
use crate::child::{self, Child};
use crate::console;
use crate::error::{self, StepFailure};
use crate::token::Role;

/// Runs `child` with the header and secrets its parent sends on stdin.
pub fn run(child: Child) -> ExitCode {
    let request = child::read_request(child).map_err(anyhow::Error::from);
    let step = |result: so_step::StepResult| {
        let failure = result.err().map(|(failure, e)| {
            console::error_line(&error::one_line(&e));
            failure
        });
        ExitCode::from(error::step_status(failure))
    };
    let (header, secrets) = match request {
        Ok(r) => r,
        Err(e) => {
            console::error_line(&error::one_line(&e));
            return ExitCode::from(match child {
                Child::SetSoPin | Child::InstallWrapKey => error::step_status(Some(StepFailure::Unchanged)),
                Child::ProveSo | Child::ProveUser => error::step_status(Some(StepFailure::ProofFailed)),
                Child::BenchWorker => error::exit::OTHER,
            });
        }
    };
    match child {
        Child::SetSoPin => step(so_step::set_child(&header, &secrets)),
        Child::ProveSo => step(so_step::prove_child(Role::SecurityOfficer, &header, &secrets)),
        Child::ProveUser => step(so_step::prove_child(Role::User, &header, &secrets)),
        Child::InstallWrapKey => step(so_step::install_wrap_key_child(&header, &secrets)),
        Child::BenchWorker => match super::bench::worker(&header, &secrets[0]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                console::error_line(&error::one_line(&e));
                ExitCode::from(error::exit_code(&e))
            }
        },
    }
}
