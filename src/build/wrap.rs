//! Wrapping a bare `src/lib.rs` (what boternity's skill builder writes: no
//! `Cargo.toml`, no `wit/`) in the template crate and the skill world.
//!
//! The file is parsed with `syn` to learn what it already has: its own
//! `wit_bindgen::generate!`, its own `export!`, and the type that implements
//! the world's `Guest` trait. Only what is missing is appended, at the end of
//! the file, so compiler messages keep pointing at the author's line numbers.

use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::skill::scaffold;

/// What a bare `lib.rs` already contains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BareLibAnalysis {
    /// Module path of its `generate!` invocation (`Some(vec![])` at the crate
    /// root, `Some(["bindings"])` inside `mod bindings { … }`), if any.
    pub generate_in: Option<Vec<String>>,
    /// Whether it calls `export!` itself.
    pub has_export: bool,
    /// The type implementing `Guest`, as written (e.g. `MySkill`).
    pub guest_type: Option<String>,
}

/// Why a bare `lib.rs` cannot be wrapped.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("{}:{line}:{column}: not valid Rust: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{} implements no `Guest` trait: add `struct MySkill; impl Guest for MySkill {{ … }}` \
         (get_name, get_description, execute)",
        file.display()
    )]
    NoGuestImpl { file: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Parses `source` and reports what it has.
pub fn analyze(file: &Path, source: &str) -> Result<BareLibAnalysis, WrapError> {
    let ast = syn::parse_file(source).map_err(|e| {
        let start = e.span().start();
        WrapError::Parse {
            file: file.to_path_buf(),
            line: start.line,
            column: start.column + 1,
            message: e.to_string(),
        }
    })?;
    let mut finder = Finder::default();
    finder.visit_file(&ast);
    Ok(finder.found)
}

#[derive(Default)]
struct Finder {
    module: Vec<String>,
    found: BareLibAnalysis,
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        match mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .as_deref()
        {
            Some("generate") if self.found.generate_in.is_none() => {
                self.found.generate_in = Some(self.module.clone());
            }
            Some("export") => self.found.has_export = true,
            _ => {}
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_item_impl(&mut self, imp: &'ast syn::ItemImpl) {
        if let Some((_, path, _)) = &imp.trait_
            && path.segments.last().is_some_and(|s| s.ident == "Guest")
            && self.found.guest_type.is_none()
        {
            let ty = &imp.self_ty;
            self.found.guest_type = Some(quote_type(ty));
        }
        syn::visit::visit_item_impl(self, imp);
    }
}

fn quote_type(ty: &syn::Type) -> String {
    use quote::ToTokens;
    ty.to_token_stream().to_string().replace(' ', "")
}

/// The text appended to a bare `lib.rs`, or `None` when it needs nothing.
pub fn additions(analysis: &BareLibAnalysis, file: &Path) -> Result<Option<String>, WrapError> {
    let mut extra = String::new();
    let module = match &analysis.generate_in {
        Some(module) => module.clone(),
        None => {
            extra.push_str(
                "\n// Added by boternity: bindings for the skill world.\n\
                 wit_bindgen::generate!({ world: \"skill-plugin\", path: \"wit\" });\n",
            );
            Vec::new()
        }
    };
    if !analysis.has_export {
        let ty = analysis
            .guest_type
            .as_deref()
            .ok_or_else(|| WrapError::NoGuestImpl {
                file: file.to_path_buf(),
            })?;
        if module.is_empty() {
            extra.push_str(&format!(
                "\n// Added by boternity: export the skill.\nexport!({ty});\n"
            ));
        } else {
            let path = module.join("::");
            extra.push_str(&format!(
                "\n// Added by boternity: export the skill.\n{path}::export!({ty} with_types_in {path});\n"
            ));
        }
    }
    Ok((!extra.is_empty()).then_some(extra))
}

/// Writes a crate for skill `name` into `dir` around the bare `lib_rs`: the
/// template's `Cargo.toml`, the skill world in `wit/`, and `src/lib.rs` with
/// whatever bindings or export it lacks. Returns the crate's `Cargo.toml`
/// and the text appended to the file, if any.
pub fn write_wrapper_crate(
    name: &str,
    lib_rs: &Path,
    dir: &Path,
) -> Result<(PathBuf, Option<String>), WrapError> {
    let source = std::fs::read_to_string(lib_rs).on(IoOp::Read, lib_rs)?;
    let analysis = analyze(lib_rs, &source)?;
    let extra = additions(&analysis, lib_rs)?;
    let mut lib = source;
    lib.push_str(extra.as_deref().unwrap_or_default());
    // The package name carries the source's hash: builds sharing a target
    // directory never mistake one version's artifact for another's, and the
    // same source still gets the same name (and the same bytes).
    let package = format!(
        "{name}-{}",
        &crate::digest::sha256_hex(lib.as_bytes())[..12]
    );
    scaffold::write_crate_files(&package, dir)?;
    let wrapped = dir.join("src/lib.rs");
    std::fs::write(&wrapped, lib).on(IoOp::Write, &wrapped)?;
    Ok((dir.join("Cargo.toml"), extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> BareLibAnalysis {
        analyze(Path::new("lib.rs"), src).unwrap()
    }

    #[test]
    fn finds_guest_type_and_what_is_missing() {
        let a = run("struct Echo;\nimpl Guest for Echo { }\n");
        assert_eq!(a.guest_type.as_deref(), Some("Echo"));
        assert_eq!(a.generate_in, None);
        assert!(!a.has_export);
        let extra = additions(&a, Path::new("lib.rs")).unwrap().unwrap();
        assert!(extra.contains("wit_bindgen::generate!") && extra.contains("export!(Echo);"));
    }

    #[test]
    fn keeps_what_the_file_has() {
        let full = "wit_bindgen::generate!({ world: \"skill-plugin\" });\nstruct S;\nimpl Guest for S {}\nexport!(S);\n";
        assert_eq!(additions(&run(full), Path::new("lib.rs")).unwrap(), None);
        let nested = "mod bindings { wit_bindgen::generate!({ world: \"skill-plugin\" }); }\nstruct S;\nimpl bindings::Guest for S {}\n";
        let extra = additions(&run(nested), Path::new("lib.rs"))
            .unwrap()
            .unwrap();
        assert!(
            extra.contains("bindings::export!(S with_types_in bindings);"),
            "{extra}"
        );
        assert!(!extra.contains("generate!"));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = analyze(Path::new("src/lib.rs"), "fn broken( {").unwrap_err();
        assert!(err.to_string().starts_with("src/lib.rs:1:"), "{err}");
        let none = run("fn helper() {}");
        assert!(matches!(
            additions(&none, Path::new("lib.rs")),
            Err(WrapError::NoGuestImpl { .. })
        ));
    }
}
