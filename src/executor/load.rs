//! Loading a skill binary into the executor, one way for every caller
//! ([`Executor::load`] of a [`SkillSource`]): compiling a component once
//! (remembered by sha256 in process, and in the compile cache across
//! processes), and deserializing a `.cwasm` only when this tool's signed
//! record vouches for it and the file has not changed since.

use super::*;

/// What to load: the description [`Executor::load`] takes.
#[derive(Debug, Clone)]
pub enum SkillSource<'a> {
    /// A skill binary in memory: a component, or a legacy JSON stub.
    Bytes(&'a [u8]),
    /// A `skill.wasm` on disk and, when there is one, the `.cwasm` compiled
    /// from it with the record this tool signed then (an installed skill's
    /// provenance, or [`Precompiled::beside`] a `build-skill --cwasm`
    /// output). The `.cwasm` is deserialized only if that record is signed
    /// with this executor's key, for its engine, and names the file's exact
    /// bytes; otherwise `wasm` is compiled (and why is said at debug level).
    File {
        wasm: &'a Path,
        precompiled: Option<Precompiled>,
    },
}

/// A `.cwasm` and the record that may authorize deserializing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precompiled {
    pub cwasm: PathBuf,
    pub record: CwasmRecord,
}

impl Precompiled {
    /// The `.cwasm` `build-skill --cwasm` left beside `wasm` (see
    /// [`cwasm::sidecar_paths`]), if its record names this very component:
    /// `wasm` is read and hashed, so a sidecar left by another build under
    /// that name is ignored. `None` when there is none (or none readable).
    pub fn beside(wasm: &Path) -> Option<Precompiled> {
        let (cwasm, record) = cwasm::sidecar_paths(wasm);
        let record: CwasmRecord = serde_json::from_slice(&std::fs::read(&record).ok()?).ok()?;
        let bytes = std::fs::read(wasm).ok()?;
        (cwasm.is_file() && record.wasm_sha256 == sha256_hex(&bytes))
            .then_some(Precompiled { cwasm, record })
    }
}

/// A skill ready to run.
pub enum LoadedSkill {
    Component {
        pre: SkillPluginPre<HostState>,
        component: Component,
        sha256: String,
        origin: Origin,
        /// What loading it took.
        timings: LoadTimings,
    },
    Stub(StubMarker),
}

/// What loading a component took, step by step (zero for steps not taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTimings {
    /// Reading and checking the `.cwasm` and its record (or the cache entry).
    pub read_check: Duration,
    /// Deserializing (or compiling) it.
    pub deserialize: Duration,
    /// Linking: the `InstancePre` against this executor's host.
    pub link: Duration,
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from the component in this process.
    Compiled,
    /// Deserialized from a `.cwasm` this tool wrote (hash checked).
    Precompiled,
    /// Deserialized from the on-disk compile cache (this tool's own entry,
    /// unchanged since it was written or hash checked).
    Cached,
}

impl Origin {
    /// `compiled`, `precompiled` or `cache`, as `skill-run` and `bench` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Compiled => "compiled",
            Origin::Precompiled => "precompiled",
            Origin::Cached => "cache",
        }
    }
}

impl LoadedSkill {
    /// `None` for stubs.
    pub fn origin(&self) -> Option<Origin> {
        match self {
            LoadedSkill::Component { origin, .. } => Some(*origin),
            LoadedSkill::Stub(_) => None,
        }
    }

    /// The bytes it keeps resident, as the loaded-skill cache counts them: a
    /// component's compiled image (its machine code and metadata, as
    /// wasmtime maps it), a stub's body and key.
    pub fn resident_bytes(&self) -> u64 {
        match self {
            LoadedSkill::Component { component, .. } => {
                let image = component.image_range();
                image.end.addr().saturating_sub(image.start.addr()) as u64
            }
            LoadedSkill::Stub(stub) => (stub.body.len() + 64) as u64,
        }
    }

    /// What loading it took (zero for stubs).
    pub fn timings(&self) -> LoadTimings {
        match self {
            LoadedSkill::Component { timings, .. } => *timings,
            LoadedSkill::Stub(_) => LoadTimings::default(),
        }
    }
}

impl Executor {
    /// Loads a skill (component or stub): the one way in. A component is
    /// compiled (or deserialized) once: later loads of the same component
    /// come from the in-process cache (and, with a [`CompileCache`], from
    /// its entry in later processes).
    pub fn load(&self, source: SkillSource<'_>) -> Result<Arc<LoadedSkill>, ExecError> {
        match source {
            SkillSource::Bytes(bytes) => self.load_bytes(bytes, sha256_hex(bytes)),
            SkillSource::File {
                wasm,
                precompiled: Some(precompiled),
            } => self.load_precompiled(wasm, &precompiled),
            SkillSource::File {
                wasm,
                precompiled: None,
            } => {
                let bytes = read(wasm)?;
                self.load_bytes(&bytes, sha256_hex(&bytes))
            }
        }
    }

    fn load_bytes(&self, bytes: &[u8], sha256: String) -> Result<Arc<LoadedSkill>, ExecError> {
        if let Some(hit) = self.cached(&sha256) {
            return Ok(hit);
        }
        let started = Instant::now();
        if let Some(cache) = &self.config.compile_cache
            && let Some(hit) = cache.lookup(&self.cwasm_key, &sha256, &self.fingerprint)
        {
            let read_check = started.elapsed();
            let deserializing = Instant::now();
            match self.deserialize_hit(hit) {
                Ok(component) => {
                    let timings = LoadTimings {
                        read_check,
                        deserialize: deserializing.elapsed(),
                        link: Duration::ZERO,
                    };
                    let skill = self.prepare(component, sha256.clone(), Origin::Cached, timings)?;
                    return Ok(self.remember(sha256, skill));
                }
                Err(reason) => {
                    tracing::debug!(%reason, "not using the compile cache entry; compiling")
                }
            }
        }
        let skill = match validate::classify(bytes)? {
            BinaryKind::Stub(stub) => LoadedSkill::Stub(stub),
            BinaryKind::CoreModule => return Err(validate::ValidateError::CoreModule.into()),
            BinaryKind::Component => {
                // Clear errors for bad bytes or another world, before compiling.
                validate::validate_component(bytes)?;
                let compiling = Instant::now();
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| ExecError::Compile(e.into()))?;
                let timings = LoadTimings {
                    deserialize: compiling.elapsed(),
                    ..LoadTimings::default()
                };
                let skill = self.prepare(component, sha256.clone(), Origin::Compiled, timings)?;
                if let (Some(cache), LoadedSkill::Component { component, .. }) =
                    (&self.config.compile_cache, &skill)
                    && let Ok(cwasm) = component.serialize()
                {
                    let record = self.cwasm_key.sign(
                        sha256_hex(&cwasm),
                        self.fingerprint.clone(),
                        sha256.clone(),
                    );
                    cache.insert(&self.cwasm_key, &record, &cwasm, None);
                }
                skill
            }
        };
        Ok(self.remember(sha256, skill))
    }

    /// A component through its `.cwasm`, but only if `record` (written by
    /// [`Executor::precompile`]) matches this engine and the file's bytes;
    /// otherwise compiles `wasm_path` and says so at debug level.
    fn load_precompiled(
        &self,
        wasm_path: &Path,
        Precompiled {
            cwasm: cwasm_path,
            record,
        }: &Precompiled,
    ) -> Result<Arc<LoadedSkill>, ExecError> {
        if let Some(hit) = self.cached(&record.wasm_sha256) {
            return Ok(hit);
        }
        match self.deserialize_checked(cwasm_path, record) {
            Ok((component, timings)) => {
                let skill = self.prepare(
                    component,
                    record.wasm_sha256.clone(),
                    Origin::Precompiled,
                    timings,
                )?;
                Ok(self.remember(record.wasm_sha256.clone(), skill))
            }
            Err(reason) => {
                tracing::debug!(cwasm = %cwasm_path.display(), %reason, "not using the precompiled artifact; compiling");
                let bytes = read(wasm_path)?;
                self.load_bytes(&bytes, sha256_hex(&bytes))
            }
        }
    }

    /// The component in an installed `.cwasm`, if its record is this
    /// machine's, for this engine, and the file's bytes are the ones it
    /// names. The bytes hashed are the bytes deserialized (read once);
    /// with a compile cache, an installed file verified before and unchanged
    /// since (same inode, size, mtime and ctime) is loaded from this tool's
    /// own copy of those bytes instead, without hashing.
    pub(super) fn deserialize_checked(
        &self,
        cwasm_path: &Path,
        record: &CwasmRecord,
    ) -> Result<(Component, LoadTimings), String> {
        let started = Instant::now();
        if !self.cwasm_key.verify(record) {
            return Err("its record was not signed with this machine's key".into());
        }
        if record.engine != self.fingerprint {
            return Err("it was compiled by another engine version or configuration".into());
        }
        let cache = self.config.compile_cache.as_ref();
        let hit =
            cache.and_then(|c| c.lookup(&self.cwasm_key, &record.wasm_sha256, &self.fingerprint));
        if let Some(hit) = hit.as_ref().filter(|hit| {
            std::fs::metadata(cwasm_path)
                .is_ok_and(|meta| hit.entry().vouches_for_source(&record.sha256, &meta))
        }) {
            let read_check = started.elapsed();
            let deserializing = Instant::now();
            let component = self.deserialize_hit_ref(hit)?;
            return Ok((
                component,
                LoadTimings {
                    read_check,
                    deserialize: deserializing.elapsed(),
                    link: Duration::ZERO,
                },
            ));
        }
        let (bytes, meta) = cache::read_stable(cwasm_path).map_err(|e| e.to_string())?;
        if sha256_hex(&bytes) != record.sha256 {
            return Err("its sha256 does not match the record this tool wrote".into());
        }
        let read_check = started.elapsed();
        let deserializing = Instant::now();
        // SAFETY: deserializing runs no checks on the machine code inside. The
        // record is signed with this machine's key, so this tool wrote it when
        // it compiled these bytes with an engine of the same fingerprint; the
        // bytes were read once and hashed above and match it: our own
        // compiler's output, unchanged.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) }
            .map_err(|e| format!("{e:#}"))?;
        let deserialize = deserializing.elapsed();
        if let Some(cache) = cache {
            match &hit {
                Some(hit) => cache.add_source(&self.cwasm_key, hit.entry(), &record.sha256, &meta),
                None => cache.insert(
                    &self.cwasm_key,
                    record,
                    &bytes,
                    Some((record.sha256.clone(), meta)),
                ),
            }
        }
        Ok((
            component,
            LoadTimings {
                read_check,
                deserialize,
                link: Duration::ZERO,
            },
        ))
    }

    pub(super) fn deserialize_hit(&self, hit: cache::Hit) -> Result<Component, String> {
        self.deserialize_hit_ref(&hit)
    }

    /// Deserializes a compile cache entry [`CompileCache::lookup`] vouched for.
    pub(super) fn deserialize_hit_ref(&self, hit: &cache::Hit) -> Result<Component, String> {
        match hit {
            cache::Hit::Unchanged { cwasm, entry } => {
                // SAFETY: the entry's record is signed with this machine's key
                // (this tool compiled these bytes with an engine of this
                // fingerprint) and the file, in a folder only this user can
                // open, is a private regular file with exactly the inode, size
                // and timestamps it had when it was written or hashed: any
                // write since would have changed its ctime. Checked again
                // below, after mapping.
                let component = unsafe { Component::deserialize_file(&self.engine, cwasm) }
                    .map_err(|e| format!("{e:#}"))?;
                let unchanged = cache::private_file_meta(cwasm)
                    .is_some_and(|meta| entry.file_vouches_for(&meta));
                if !unchanged {
                    return Err("the cache entry changed while it was loaded".into());
                }
                Ok(component)
            }
            cache::Hit::Hashed { bytes, .. } => {
                // SAFETY: the entry's record is signed as above, and these
                // bytes (read once) were hashed and match it.
                unsafe { Component::deserialize(&self.engine, bytes) }.map_err(|e| format!("{e:#}"))
            }
        }
    }

    /// Compiles a component ahead of time (validated and linked against this
    /// executor's host on the way, so a component that would not run is
    /// refused here); returns the `.cwasm` bytes and the record that later
    /// authorizes loading them.
    pub fn precompile(&self, wasm: &[u8]) -> Result<(Vec<u8>, CwasmRecord), ExecError> {
        let cwasm = match &*self.load(SkillSource::Bytes(wasm))? {
            LoadedSkill::Component { component, .. } => component
                .serialize()
                .map_err(|e| ExecError::Compile(e.into()))?,
            LoadedSkill::Stub(_) => return Err(validate::ValidateError::Stub.into()),
        };
        let record = self.cwasm_key.sign(
            sha256_hex(&cwasm),
            self.engine_fingerprint(),
            sha256_hex(wasm),
        );
        Ok((cwasm, record))
    }

    fn cached(&self, sha256: &str) -> Option<Arc<LoadedSkill>> {
        self.loaded.get(sha256)
    }

    fn remember(&self, sha256: String, skill: LoadedSkill) -> Arc<LoadedSkill> {
        self.loaded.insert(sha256, skill)
    }

    pub(super) fn prepare(
        &self,
        component: Component,
        sha256: String,
        origin: Origin,
        mut timings: LoadTimings,
    ) -> Result<LoadedSkill, ExecError> {
        let linking = Instant::now();
        let link = |e: wasmtime::Error| ExecError::Link(e.into());
        let instance_pre = self
            .linkers
            .for_component(&self.engine, &component)
            .and_then(|linker| linker.instantiate_pre(&component))
            .map_err(link)?;
        let pre = SkillPluginPre::new(instance_pre).map_err(|e| ExecError::Link(e.into()))?;
        timings.link = linking.elapsed();
        Ok(LoadedSkill::Component {
            pre,
            component,
            sha256,
            origin,
            timings,
        })
    }
}

/// A file's bytes, or which file could not be read.
fn read(path: &Path) -> Result<Vec<u8>, ExecError> {
    std::fs::read(path).map_err(|source| ExecError::Io {
        path: path.to_path_buf(),
        source,
    })
}
