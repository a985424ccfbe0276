//! Empty on purpose: it exists so that Cargo.toml's `[build-dependencies]`
//! (the host half of the workspace-hack) are resolved; see the comment there.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
