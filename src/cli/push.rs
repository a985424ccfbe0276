//! `boternity push`: a skill through the install pipeline (built confined,
//! validated, world-checked, linked against the executor), then pushed to an
//! OCI registry as a Wasm OCI artifact, signed with `--sign-key`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use boternity_skills::oci::manifest::{REVISION, SOURCE};
use boternity_skills::oci::publish::{self, Published};
use boternity_skills::oci::{OciClient, Reference};
use boternity_skills::pipeline::{self, PipelineOptions};
use boternity_skills::registry::sign::SigningKey;

use super::args::{BuildArgs, OutputArgs, PasswordArgs};
use super::message::{self, SkillPushed};
use super::oci::OciArgs;

/// Build and check a skill as install does, then push it to an OCI registry.
///
/// The skill goes through install's pipeline (Rust source built in the build
/// sandbox, a shipped binary validated, the component checked against the
/// skill world and linked against the executor; never a stub), then is pushed
/// as an OCI artifact: the component as the Wasm OCI layer
/// (application/wasm under application/vnd.wasm.config.v0+json), each file of
/// the folder as a layer of its own (application/vnd.boternity.skill.file.v1,
/// its path in org.opencontainers.image.title), the manifest annotated with
/// the skill's name, version and description. Blobs the registry has are not
/// uploaded again. Without a tag, the skill's version is the tag. With
/// --sign-key, a minisign signature of the manifest digest is pushed as a
/// referrer of the manifest and under the tag sha256-<hex>.sig.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity push skills/weather ghcr.io/acme/skills/weather:1.2.0 --sign-key registry.key\n  echo \"$TOKEN\" | boternity push . ghcr.io/acme/skills/weather --username bot --password-stdin\n  boternity push skills/echo 127.0.0.1:5000/skills/echo --message-format json\n\nExit status:\n  0  pushed (and signed, with --sign-key)\n  1  not pushed (the reason is printed)"
)]
pub struct Opts {
    /// The skill folder (holding SKILL.md).
    skill_dir: PathBuf,
    /// Where to push: [oci://]HOST/REPOSITORY[:TAG] (the tag defaults to the
    /// skill's version).
    reference: String,
    /// Sign the manifest digest with this minisign secret key (from
    /// `boternity keygen`); installs pin its .pub with --registry-key.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
    /// org.opencontainers.image.source: where the skill's source lives.
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    /// org.opencontainers.image.revision: the source's revision (a commit).
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    #[command(flatten)]
    build: BuildArgs,
    #[command(flatten)]
    oci: OciArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        // Loaded first: a wrong password fails before anything is built.
        let key = match &self.sign_key {
            Some(path) => Some(SigningKey::load(path, self.password.password()?.as_ref())?),
            None => None,
        };
        let reference = Reference::parse(&self.reference)?;
        anyhow::ensure!(
            reference.digest.is_none(),
            "push to a tag, not a digest: the digest is what the push makes"
        );
        let mut context = super::context::from_env(None);
        let client =
            self.oci
                .client(&mut context, &Default::default(), Default::default(), true)?;
        let options = PipelineOptions {
            build: self.build.options(),
            no_stub: true,
            toolchain: None,
            registry: None,
        };
        let prepared =
            pipeline::prepare(&context, &self.skill_dir, &options).with_context(|| {
                format!(
                    "cannot push {}: it does not build",
                    self.skill_dir.display()
                )
            })?;
        if let Some(wasm) = &prepared.binary {
            // Install links every component against the executor: so does push.
            super::executor()?
                .precompile(wasm)
                .context("the component does not run on this executor")?;
        }
        let mut artifact = publish::artifact_of(&prepared)?;
        if let Some(source) = &self.source {
            artifact.annotations.insert(SOURCE.into(), source.clone());
        }
        if let Some(revision) = &self.revision {
            artifact
                .annotations
                .insert(REVISION.into(), revision.clone());
        }
        let reference = match reference.tag {
            Some(_) => reference,
            None => reference.with_tag(&boternity_skills::oci::reference::tag_for_version(
                prepared.folder.manifest.version_or_default(),
            )),
        };
        let published = publish::push_signed(&client, &reference, &artifact, key.as_ref())
            .with_context(|| format!("cannot push {} to {reference}", self.skill_dir.display()))?;
        let manifest = &prepared.folder.manifest;
        report(
            &manifest.name,
            manifest.version.as_deref(),
            &published,
            self.format,
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Reports one push: a `skill-pushed` message, or lines on stderr.
pub fn report(name: &str, version: Option<&str>, published: &Published, format: OutputArgs) {
    let (pushed, signature) = (&published.pushed, published.signature.as_deref());
    if format.json() {
        message::emit(&SkillPushed::new(name, version, pushed, signature));
        return;
    }
    eprintln!(
        "{:>12} `{}` v{} -> {}@{}",
        "Pushed",
        name,
        version.unwrap_or("-"),
        pushed.reference,
        pushed.digest
    );
    eprintln!(
        "{:>12} {} blobs uploaded ({} bytes), {} already there",
        "Blobs", pushed.uploaded, pushed.bytes, pushed.skipped
    );
    if let Some(signature) = signature {
        eprintln!(
            "{:>12} {} (tag {})",
            "Signed",
            signature,
            OciClient::signature_tag(&pushed.digest)
        );
    }
}
