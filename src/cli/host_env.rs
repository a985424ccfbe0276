//! What the CLI lets a skill read of its process: secrets from
//! `BOTERNITY_SECRET_<NAME>` variables and, for `read-env`, the environment.
//! The library reads neither (its default host services answer "not set"):
//! an embedding server decides where its secrets come from; the command line
//! takes them from the shell it was started in. Each name is still only
//! answered when the invocation's grants name it.

use std::sync::Arc;

use boternity_skills::executor::{HostServices, NoMemory, SecretsProvider};

/// Secrets from the environment: `BOTERNITY_SECRET_<NAME>` (upper-case, `-` as `_`).
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets;

impl SecretsProvider for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        let var = format!(
            "BOTERNITY_SECRET_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        std::env::var(var).ok()
    }
}

/// The host services of every executor the CLI makes: secrets and
/// `read-env` from the environment, no memory.
pub fn services() -> HostServices {
    HostServices {
        secrets: Arc::new(EnvSecrets),
        memory: Arc::new(NoMemory),
        env: Arc::new(|name| std::env::var(name).ok()),
    }
}
