//! `boternity precompile`: pre-compile a whole registry of skills (CI).

use std::io::IsTerminal;

use std::path::PathBuf;
use std::process::ExitCode;

use boternity_skills::registry::index::Status;
use boternity_skills::registry::precompile::{self, PrecompileOptions, Progress, Shard};

use super::args::{BuildArgs, NoStubArgs, OutputArgs, SigningArgs};
use super::message::{self, LayerWord, PrecompileFinished, SkillPrecompiled};

/// Pre-compile every skill of a registry into validated components.
///
/// Finds every folder holding SKILL.md below REGISTRY_DIR; each Tool skill goes
/// through the install pipeline (build / componentize / validate / stub) into
/// OUT/<name>/<version>/ with its provenance, and OUT/index.json lists them
/// all with every file's size and sha256. Prompt skills are published too
/// (their files, no binary). Each skill builds confined, in its own target
/// directory, over a read-only dependency layer shared by the skills with the
/// same dependencies (the cache's layers/; each skill says whether it built
/// or reused its layer); unchanged skills are not rebuilt. The index's serial grows past
/// the previous OUT/index.json (whose yanks it keeps); --sign-key signs it,
/// valid for --expires-in.
#[derive(clap::Args)]
#[command(
    group = SigningArgs::requires_key("sign_key"),
    after_help = "Examples:\n  boternity precompile registry/ --out dist/\n  boternity precompile registry/ --out dist/shard-2 --shard 2/4 --no-stub --message-format json\n  boternity index merge dist/shard-*/index.json -o dist/index.json\n  boternity precompile registry/ --out dist/ --sign-key registry.key --push ghcr.io/acme/skills\n\nExit status:\n  0  every skill succeeded (ok, cached or skipped)\n  1  at least one skill failed (all others were still built)"
)]
pub struct Opts {
    /// The registry: a folder with skill folders anywhere below it.
    registry_dir: PathBuf,
    /// Where to write <name>/<version>/skill.wasm and index.json.
    #[arg(long)]
    out: PathBuf,
    /// Skills processed at once (cargo builds share one jobserver).
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Only this shard of the registry, K/N (stable by skill name).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    #[command(flatten)]
    stub: NoStubArgs,
    /// Rebuild skills even when nothing changed.
    #[arg(long)]
    force: bool,
    /// Fail skills whose SKILL.md breaks the Agent Skills spec (lenient
    /// fallbacks needed); by default they are built, with warnings in the index.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    build: BuildArgs,
    /// Also write skill.cwasm, precompiled and signed for this machine.
    #[arg(long)]
    cwasm: bool,
    /// Sign index.json into index.json.minisig with this minisign secret key
    /// (from `boternity keygen`).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    signing: SigningArgs,
    /// After the build, push every skill to this OCI registry and namespace
    /// as <NAMESPACE>/<name>:<version> (signed with --sign-key, when given),
    /// reporting each digest.
    #[arg(long, value_name = "REGISTRY/NAMESPACE")]
    push: Option<String>,
    /// With --push: uploads at once.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "push")]
    push_jobs: usize,
    #[command(flatten)]
    oci: super::oci::OciArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Opts {
    /// `jobserver`: the one this process inherited, taken at the start of `main`.
    pub fn run(self, jobserver: Option<jobserver::Client>) -> anyhow::Result<ExitCode> {
        // Loaded first: a wrong password fails before anything is built.
        let sign_key = match &self.sign_key {
            Some(path) => Some(self.signing.signer(path)?),
            None => None,
        };
        let mut context = super::context::from_env(None);
        // Checked before anything is built.
        let push_to = match &self.push {
            Some(target) => {
                let target = target.trim_end_matches('/');
                boternity_skills::oci::Reference::parse(&format!("{target}/x"))?;
                let client =
                    self.oci
                        .client(&mut context, &Default::default(), Default::default(), true)?;
                Some((target.to_string(), client))
            }
            None => None,
        };
        let push_key = sign_key.as_ref().map(|s| s.key.clone());
        let options = PrecompileOptions {
            out: self.out.clone(),
            jobs: self.jobs,
            shard: self.shard,
            no_stub: self.stub.no_stub,
            force: self.force,
            cwasm: self.cwasm,
            target_dir: self.build.target_dir.clone(),
            confinement: self.build.options().confinement,
            registries: self.build.options().registries,
            max_target_bytes: self.build.max_target_bytes,
            jobserver,
            strict: self.strict,
            sign_key,
            layers: !self.build.no_build_layers,
        };
        let json = self.format.json();
        // The bar's length is this run's (this shard's) skills, which the
        // library reports once it has them.
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let progress = |event: Progress<'_>| match event {
            Progress::Started { skills } => {
                if let Some(bar) = &bar {
                    bar.set_length(skills as u64);
                }
            }
            Progress::Finished { entry, layer } if json => message::emit(&SkillPrecompiled {
                entry,
                layer: LayerWord::of(layer),
                layer_key: layer.map(|l| l.key.as_str()),
            }),
            Progress::Finished { entry, .. } => {
                if let Some(bar) = &bar {
                    bar.inc(1);
                    bar.set_message(format!("{} {}", entry.name, status_word(entry.status)));
                }
            }
        };
        let report = precompile::precompile(&context, &self.registry_dir, &options, &progress)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let counts =
            [Status::Ok, Status::Cached, Status::Skipped, Status::Failed].map(|s| report.count(s));
        if json {
            message::emit(&PrecompileFinished {
                skills: report.index.skills.len(),
                found: report.found,
                ok: counts[0],
                cached: counts[1],
                skipped: counts[2],
                failed: counts[3],
                duration_ms: report.duration.as_millis() as u64,
                index: &report.index_path,
            });
        } else {
            println!(
                "{:<28} {:<10} {:<8} {:<14} {:<7} DETAIL",
                "NAME", "VERSION", "STATUS", "PATH TAKEN", "LAYER"
            );
            for e in &report.index.skills {
                let detail = match (&e.error, e.size) {
                    (Some(err), _) => err.lines().next().unwrap_or_default().to_string(),
                    (None, Some(size)) => format!("{size} bytes"),
                    (None, None) => String::new(),
                };
                let taken = e.path_taken.map_or("-".to_string(), |p| p.to_string());
                println!(
                    "{:<28} {:<10} {:<8} {:<14} {:<7} {}",
                    e.name,
                    e.version,
                    status_word(e.status),
                    taken,
                    LayerWord::of(report.layer(e)).as_str(),
                    detail
                );
            }
            eprintln!(
                "{} skills: {} ok, {} cached, {} skipped, {} failed in {:.1}s; index: {}",
                report.index.skills.len(),
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                report.duration.as_secs_f64(),
                report.index_path.display()
            );
            for e in report
                .index
                .skills
                .iter()
                .filter(|e| e.status == Status::Failed)
            {
                eprintln!(
                    "\nerror: `{}` {} failed:\n{}",
                    e.name,
                    e.version,
                    e.error.as_deref().unwrap_or_default()
                );
            }
        }
        let pushed_ok = match &push_to {
            Some((target, client)) => self.push_all(target, client, &report, push_key.as_ref())?,
            None => true,
        };
        Ok(if report.failed() || !pushed_ok {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// `--push`: every published skill of the index to
    /// `<target>/<name>:<version>`, at most `--push-jobs` at once; whether
    /// all were pushed.
    fn push_all(
        &self,
        target: &str,
        client: &boternity_skills::oci::OciClient,
        report: &precompile::PrecompileReport,
        key: Option<&boternity_skills::registry::sign::SigningKey>,
    ) -> anyhow::Result<bool> {
        use boternity_skills::oci::{Reference, publish};
        let mut items = Vec::new();
        let mut failures = Vec::new();
        for entry in report.index.skills.iter().filter(|e| e.is_installable()) {
            let reference = format!(
                "{target}/{}:{}",
                entry.name,
                boternity_skills::oci::reference::tag_for_version(&entry.version)
            );
            let item = Reference::parse(&reference)
                .map_err(boternity_skills::oci::OciError::from)
                .and_then(|r| Ok((r, publish::artifact_of_entry(&self.out, entry)?)));
            match item {
                Ok(item) => items.push((entry, item)),
                Err(e) => failures.push(format!(
                    "`{}`: {}",
                    entry.name,
                    boternity_skills::error_chain(&e)
                )),
            }
        }
        let (entries, items): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let results = publish::push_all(client, &items, self.push_jobs, key);
        for (entry, result) in entries.iter().zip(results) {
            match result {
                Ok(published) => {
                    super::push::report(&entry.name, Some(&entry.version), &published, self.format)
                }
                Err(e) => failures.push(format!(
                    "`{}`: cannot push it: {}",
                    entry.name,
                    boternity_skills::error_chain(&e)
                )),
            }
        }
        if failures.is_empty() {
            return Ok(true);
        }
        anyhow::bail!("precompile --push: {}", failures.join("; "))
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Cached => "cached",
        Status::Skipped => "skipped",
        Status::Failed => "FAILED",
    }
}
