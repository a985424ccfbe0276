//! The skill world: the WIT contract every Tool skill is built against, and the
//! check that a component implements it.
//!
//! `wit/boternity-skill.wit` is embedded at compile time; it is the same file
//! boternity ships, so a skill written against boternity's world builds and runs
//! here unchanged. The check compares the component's own type information
//! (decoded with `wit-component`) with that world, function by function, and
//! lists every difference rather than stopping at the first.

use std::fmt;
use std::sync::OnceLock;

use wit_parser::{Function, Resolve, Type, TypeDefKind, WorldId, WorldItem, WorldKey};

/// The WIT text of the skill world, as shipped in `wit/`.
pub const SKILL_WIT: &str = include_str!("../../wit/boternity-skill.wit");
/// The WIT package of the skill world.
pub const WORLD_PACKAGE: &str = "boternity:skill";
/// The world a skill implements.
pub const WORLD_NAME: &str = "skill-plugin";
/// The interface of host functions skills import.
pub const HOST_INTERFACE: &str = "boternity:skill/host";

/// The WASI 0.2 interfaces a skill may import, unversioned: the one table both
/// the world check here and the executor's linker (`executor::link`, which
/// defines exactly these, with `wasmtime-wasi`'s deny-by-default context) read,
/// so what validation accepts is what the executor can link. Rust's std
/// imports several of these even in a skill that never touches the outside
/// world. A unit test in `executor::link` links a component importing every
/// one of them.
pub const WASI_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
];

/// The entry of [`WASI_INTERFACES`] an import names, whatever its version
/// (`wasi:cli/stdout@0.2.6` -> `wasi:cli/stdout`); `None` for anything else.
/// Whether the version is one the executor links is [`differences`]' question.
pub fn wasi_interface(import: &str) -> Option<&'static str> {
    let unversioned = import.split_once('@').map_or(import, |(name, _)| name);
    WASI_INTERFACES
        .iter()
        .copied()
        .find(|known| *known == unversioned)
}

/// The newest WASI 0.2 minor release the executor links (wasmtime-wasi 48).
/// Imports of any 0.2.x up to this one are semver-compatible with it.
pub const WASI_PATCH_PROVIDED: u64 = 12;

/// The skill world, parsed once.
pub struct SkillWorld {
    resolve: Resolve,
    world: WorldId,
}

impl SkillWorld {
    /// The embedded skill world (parsed on first use).
    pub fn get() -> &'static SkillWorld {
        static WORLD: OnceLock<SkillWorld> = OnceLock::new();
        WORLD.get_or_init(|| {
            let mut resolve = Resolve::default();
            // The WIT is part of this crate and covered by tests: failing to parse
            // it is a build defect, not a user error.
            let pkg = resolve
                .push_str("wit/boternity-skill.wit", SKILL_WIT)
                .expect("embedded skill world parses");
            let world = resolve
                .select_world(&[pkg], Some(WORLD_NAME))
                .expect("embedded skill world has `skill-plugin`");
            SkillWorld { resolve, world }
        })
    }

    /// sha256 of the world's WIT text: identifies the exact contract in provenance.
    pub fn wit_sha256() -> String {
        crate::digest::sha256_hex(SKILL_WIT.as_bytes())
    }

    /// Signatures of the world's exports, by name, rendered as canonical WIT.
    fn exports(&self) -> Vec<(String, String)> {
        functions_of(&self.resolve, &self.resolve.worlds[self.world].exports)
    }

    /// Signatures of the host interface's functions, by name.
    fn host_functions(&self) -> Vec<(String, String)> {
        let world = &self.resolve.worlds[self.world];
        for (key, item) in &world.imports {
            if let (WorldKey::Interface(id), WorldItem::Interface { .. }) = (key, item)
                && self.resolve.id_of(*id).as_deref() == Some(HOST_INTERFACE)
            {
                return interface_functions(&self.resolve, *id);
            }
        }
        Vec::new()
    }
}

/// One way in which a component differs from the skill world.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WorldMismatch {
    /// A function the world exports is missing.
    MissingExport { name: String, expected: String },
    /// An export exists with another signature.
    ExportSignature {
        name: String,
        expected: String,
        found: String,
    },
    /// The component exports something the world does not.
    UnexpectedExport { name: String },
    /// The component imports an interface or function the executor does not provide.
    UnknownImport { name: String },
    /// The component imports a host function the world does not define.
    UnknownHostFunction { name: String },
    /// The component imports a host function with another signature.
    HostFunctionSignature {
        name: String,
        expected: String,
        found: String,
    },
    /// A WASI interface newer than the one the executor links.
    WasiTooNew { name: String, provided: String },
}

impl fmt::Display for WorldMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingExport { name, expected } => {
                write!(f, "missing export `{name}: {expected}`")
            }
            Self::ExportSignature {
                name,
                expected,
                found,
            } => write!(
                f,
                "export `{name}` has type `{found}`, the world says `{expected}`"
            ),
            Self::UnexpectedExport { name } => {
                write!(f, "export `{name}` is not part of the skill world")
            }
            Self::UnknownImport { name } => write!(
                f,
                "imports `{name}`, which the executor does not provide \
                 (only `{HOST_INTERFACE}` and WASI 0.2 cli/io/clocks/random/filesystem/sockets)"
            ),
            Self::UnknownHostFunction { name } => write!(
                f,
                "imports `{HOST_INTERFACE}.{name}`, which the skill world does not define"
            ),
            Self::HostFunctionSignature {
                name,
                expected,
                found,
            } => write!(
                f,
                "imports `{HOST_INTERFACE}.{name}` as `{found}`, the world says `{expected}`"
            ),
            Self::WasiTooNew { name, provided } => write!(
                f,
                "imports `{name}`, newer than the WASI the executor links ({provided})"
            ),
        }
    }
}

/// Checks a decoded component world against the skill world; returns every
/// difference (empty when the component is a skill).
pub fn differences(resolve: &Resolve, world: WorldId) -> Vec<WorldMismatch> {
    let skill = SkillWorld::get();
    let mut found = Vec::new();
    let theirs = &resolve.worlds[world];

    // Exports: exactly the world's functions, with exactly its types.
    let actual_exports = functions_of(resolve, &theirs.exports);
    for (name, expected) in skill.exports() {
        match actual_exports.iter().find(|(n, _)| *n == name) {
            None => found.push(WorldMismatch::MissingExport { name, expected }),
            Some((_, sig)) if *sig != expected => found.push(WorldMismatch::ExportSignature {
                name,
                expected,
                found: sig.clone(),
            }),
            Some(_) => {}
        }
    }
    let expected_exports = skill.exports();
    for (key, _) in &theirs.exports {
        let name = key_name(resolve, key);
        if !expected_exports.iter().any(|(n, _)| *n == name) {
            found.push(WorldMismatch::UnexpectedExport { name });
        }
    }

    // Imports: the host interface (any subset of it, with exact types) and the
    // WASI interfaces the executor links.
    let host = skill.host_functions();
    for (key, item) in &theirs.imports {
        match item {
            WorldItem::Type { .. } => {}
            WorldItem::Function(_) => found.push(WorldMismatch::UnknownImport {
                name: key_name(resolve, key),
            }),
            WorldItem::Interface { id, .. } => {
                let name = key_name(resolve, key);
                if name == HOST_INTERFACE {
                    for (fname, sig) in interface_functions(resolve, *id) {
                        match host.iter().find(|(n, _)| *n == fname) {
                            None => found.push(WorldMismatch::UnknownHostFunction { name: fname }),
                            Some((_, expected)) if *expected != sig => {
                                found.push(WorldMismatch::HostFunctionSignature {
                                    name: fname,
                                    expected: expected.clone(),
                                    found: sig,
                                })
                            }
                            Some(_) => {}
                        }
                    }
                } else if let Some(mismatch) = check_wasi_import(&name) {
                    found.push(mismatch);
                }
            }
        }
    }
    found
}

/// `None` when `name` (e.g. `wasi:io/streams@0.2.4`) is a WASI interface the
/// executor links at a compatible version.
fn check_wasi_import(name: &str) -> Option<WorldMismatch> {
    let unknown = || {
        Some(WorldMismatch::UnknownImport {
            name: name.to_string(),
        })
    };
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, v),
        None => return unknown(),
    };
    if wasi_interface(path).is_none() {
        return unknown();
    }
    let mut parts = version.split('.');
    let (major, minor, patch) = (parts.next(), parts.next(), parts.next());
    if major != Some("0") || minor != Some("2") {
        return unknown();
    }
    // Pre-release suffixes (`0.2.0-rc-…`) are older than the release they precede.
    let patch: u64 = match patch
        .unwrap_or("0")
        .split(['-', '+'])
        .next()
        .and_then(|p| p.parse().ok())
    {
        Some(p) => p,
        None => return unknown(),
    };
    if patch > WASI_PATCH_PROVIDED {
        return Some(WorldMismatch::WasiTooNew {
            name: name.to_string(),
            provided: format!("0.2.{WASI_PATCH_PROVIDED}"),
        });
    }
    None
}

fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(n) => n.clone(),
        WorldKey::Interface(id) => resolve.id_of(*id).unwrap_or_else(|| "<anonymous>".into()),
    }
}

fn functions_of(
    resolve: &Resolve,
    items: &wit_parser::IndexMap<WorldKey, WorldItem>,
) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|(key, item)| match item {
            WorldItem::Function(f) => Some((key_name(resolve, key), render_function(resolve, f))),
            _ => None,
        })
        .collect()
}

fn interface_functions(resolve: &Resolve, id: wit_parser::InterfaceId) -> Vec<(String, String)> {
    resolve.interfaces[id]
        .functions
        .iter()
        .map(|(name, f)| (name.clone(), render_function(resolve, f)))
        .collect()
}

/// A canonical, structural rendering of a function type. Two functions are
/// interchangeable in the component model exactly when these strings are equal:
/// type names do not matter, field and case names and their order do.
pub fn render_function(resolve: &Resolve, f: &Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, render_type(resolve, &p.ty)))
        .collect();
    let mut out = format!("func({})", params.join(", "));
    if let Some(result) = &f.result {
        out.push_str(" -> ");
        out.push_str(&render_type(resolve, result));
    }
    out
}

fn render_opt(resolve: &Resolve, ty: &Option<Type>) -> String {
    ty.as_ref()
        .map_or_else(|| "_".to_string(), |t| render_type(resolve, t))
}

fn render_type(resolve: &Resolve, ty: &Type) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    match &def.kind {
        TypeDefKind::Type(t) => render_type(resolve, t),
        TypeDefKind::Record(r) => {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, render_type(resolve, &f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        TypeDefKind::Tuple(t) => {
            let types: Vec<String> = t.types.iter().map(|t| render_type(resolve, t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        TypeDefKind::Flags(fl) => {
            let names: Vec<&str> = fl.flags.iter().map(|f| f.name.as_str()).collect();
            format!("flags {{ {} }}", names.join(", "))
        }
        TypeDefKind::Enum(e) => {
            let names: Vec<&str> = e.cases.iter().map(|c| c.name.as_str()).collect();
            format!("enum {{ {} }}", names.join(", "))
        }
        TypeDefKind::Variant(v) => {
            let cases: Vec<String> = v
                .cases
                .iter()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, render_type(resolve, t)),
                    None => c.name.clone(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        TypeDefKind::Option(t) => format!("option<{}>", render_type(resolve, t)),
        TypeDefKind::Result(r) => match (&r.ok, &r.err) {
            (None, None) => "result".into(),
            (ok, err) => format!(
                "result<{}, {}>",
                render_opt(resolve, ok),
                render_opt(resolve, err)
            ),
        },
        TypeDefKind::List(t) => format!("list<{}>", render_type(resolve, t)),
        TypeDefKind::Map(k, v) => format!(
            "map<{}, {}>",
            render_type(resolve, k),
            render_type(resolve, v)
        ),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", render_type(resolve, t)),
        TypeDefKind::Future(t) => format!("future<{}>", render_opt(resolve, t)),
        TypeDefKind::Stream(t) => format!("stream<{}>", render_opt(resolve, t)),
        TypeDefKind::Handle(wit_parser::Handle::Own(r)) => {
            format!("own<{}>", resolve.types[*r].name.as_deref().unwrap_or("?"))
        }
        TypeDefKind::Handle(wit_parser::Handle::Borrow(r)) => {
            format!(
                "borrow<{}>",
                resolve.types[*r].name.as_deref().unwrap_or("?")
            )
        }
        TypeDefKind::Resource => format!("resource {}", def.name.as_deref().unwrap_or("?")),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_world_matches_the_seed_contract() {
        let world = SkillWorld::get();
        let exports = world.exports();
        assert_eq!(
            exports,
            vec![
                ("get-name".to_string(), "func() -> string".to_string()),
                (
                    "get-description".to_string(),
                    "func() -> string".to_string()
                ),
                (
                    "execute".to_string(),
                    "func(input: string) -> result<string, string>".to_string()
                ),
            ]
        );
        let host = world.host_functions();
        assert_eq!(host.len(), 9);
        assert!(host.contains(&(
            "write-file".to_string(),
            "func(path: string, content: string) -> result<_, string>".to_string()
        )));
    }

    #[test]
    fn wasi_interfaces_are_named_without_their_version() {
        assert_eq!(
            wasi_interface("wasi:cli/stdout@0.2.6"),
            Some("wasi:cli/stdout")
        );
        assert_eq!(wasi_interface("wasi:io/streams"), Some("wasi:io/streams"));
        assert_eq!(wasi_interface("wasi:http/types@0.2.6"), None);
        assert_eq!(wasi_interface("boternity:skill/host"), None);
    }

    #[test]
    fn wasi_versions_are_checked_semver_compatibly() {
        assert_eq!(check_wasi_import("wasi:io/streams@0.2.0"), None);
        assert_eq!(check_wasi_import("wasi:cli/environment@0.2.6"), None);
        assert!(matches!(
            check_wasi_import("wasi:io/streams@0.2.99"),
            Some(WorldMismatch::WasiTooNew { .. })
        ));
        assert!(matches!(
            check_wasi_import("wasi:http/outgoing-handler@0.2.0"),
            Some(WorldMismatch::UnknownImport { .. })
        ));
        assert!(matches!(
            check_wasi_import("wasi:io/streams@0.3.0"),
            Some(WorldMismatch::UnknownImport { .. })
        ));
    }
}
