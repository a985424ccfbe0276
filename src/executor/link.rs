//! Linking: the host functions a component is instantiated against. An
//! executor keeps one linker per set of imported WASI interfaces, holding the
//! skill world's host interface and only those WASI 0.2 interfaces. Defining
//! all 27 up front took a one-call process ~0.13 ms, most of it for the
//! filesystem and sockets interfaces, which the template skill (13 of the 27)
//! does not import.
//! What a function may do is decided by the store's context, not here: a
//! skill that imports sockets or the filesystem links, and is denied at run
//! time as before.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{LinkOptions, cli, clocks, filesystem, io, random, sockets};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

use super::bindings::SkillPlugin;
use super::host::HostState;

/// The linkers of one executor, by the WASI interfaces they define.
pub(super) struct Linkers {
    by_interfaces: Mutex<HashMap<BTreeSet<&'static str>, Arc<Linker<HostState>>>>,
}

impl Linkers {
    pub(super) fn new() -> Linkers {
        Linkers {
            by_interfaces: Mutex::new(HashMap::new()),
        }
    }

    /// A linker for `component`: the host interface and the WASI interfaces
    /// it imports. An import nobody provides is left out, so
    /// `instantiate_pre` names it.
    pub(super) fn for_component(
        &self,
        engine: &Engine,
        component: &Component,
    ) -> wasmtime::Result<Arc<Linker<HostState>>> {
        let interfaces: BTreeSet<&'static str> = component
            .component_type()
            .imports(engine)
            .filter_map(|(name, _)| wasi_interface(name))
            .collect();
        let mut linkers = self.by_interfaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(linker) = linkers.get(&interfaces) {
            return Ok(linker.clone());
        }
        let mut linker = Linker::new(engine);
        SkillPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        for interface in &interfaces {
            define_wasi(&mut linker, interface)?;
        }
        let linker = Arc::new(linker);
        linkers.insert(interfaces, linker.clone());
        Ok(linker)
    }
}

/// The WASI 0.2 interfaces boternity defines (wasmtime-wasi's, as
/// `wasmtime_wasi::p2::add_to_linker_async` adds them).
const WASI_INTERFACES: &[&str] = &[
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

/// `wasi:cli/stdout@0.2.6` -> `wasi:cli/stdout`, for the interfaces above
/// (the linker matches semver-compatible versions itself).
fn wasi_interface(import: &str) -> Option<&'static str> {
    let unversioned = import.split_once('@').map_or(import, |(name, _)| name);
    WASI_INTERFACES
        .iter()
        .copied()
        .find(|known| *known == unversioned)
}

/// The resource table, for the `wasi:io` interfaces.
struct HostIo;

impl HasData for HostIo {
    type Data<'a> = &'a mut ResourceTable;
}

fn random(t: &mut HostState) -> &mut wasmtime_wasi::random::WasiRandomCtx {
    t.ctx().ctx.random()
}

fn define_wasi(l: &mut Linker<HostState>, interface: &str) -> wasmtime::Result<()> {
    type T = HostState;
    match interface {
        "wasi:io/error" => io::error::add_to_linker::<T, HostIo>(l, |t| &mut t.table),
        "wasi:io/poll" => io::poll::add_to_linker::<T, HostIo>(l, |t| &mut t.table),
        "wasi:io/streams" => io::streams::add_to_linker::<T, HostIo>(l, |t| &mut t.table),
        "wasi:cli/environment" => cli::environment::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/exit" => cli::exit::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/stderr" => cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/stdin" => cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/stdout" => cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/terminal-input" => cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/terminal-output" => cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/terminal-stderr" => cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/terminal-stdin" => cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:cli/terminal-stdout" => cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli),
        "wasi:clocks/monotonic-clock" => {
            clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }
        "wasi:clocks/wall-clock" => {
            clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }
        "wasi:filesystem/preopens" => {
            filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)
        }
        "wasi:filesystem/types" => {
            filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)
        }
        "wasi:random/insecure" => random::insecure::add_to_linker::<T, WasiRandom>(l, random),
        "wasi:random/insecure-seed" => {
            random::insecure_seed::add_to_linker::<T, WasiRandom>(l, random)
        }
        "wasi:random/random" => random::random::add_to_linker::<T, WasiRandom>(l, random),
        "wasi:sockets/instance-network" => {
            sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }
        "wasi:sockets/ip-name-lookup" => {
            sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }
        "wasi:sockets/network" => sockets::network::add_to_linker::<T, WasiSockets>(
            l,
            &(&LinkOptions::default()).into(),
            T::sockets,
        ),
        "wasi:sockets/tcp" => sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets),
        "wasi:sockets/tcp-create-socket" => {
            sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }
        "wasi:sockets/udp" => sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets),
        "wasi:sockets/udp-create-socket" => {
            sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }
        other => Err(wasmtime::Error::msg(format!(
            "boternity does not define the WASI interface `{other}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dropped_and_unknown_interfaces_ignored() {
        assert_eq!(
            wasi_interface("wasi:cli/stdout@0.2.6"),
            Some("wasi:cli/stdout")
        );
        assert_eq!(wasi_interface("wasi:io/streams"), Some("wasi:io/streams"));
        assert_eq!(wasi_interface("wasi:http/types@0.2.6"), None);
        assert_eq!(wasi_interface("boternity:skill/host"), None);
    }

    /// The table and `define_wasi` agree: every interface named is defined.
    #[test]
    fn every_listed_interface_is_defined() {
        let engine = Engine::default();
        let mut linker = Linker::<HostState>::new(&engine);
        for interface in WASI_INTERFACES {
            define_wasi(&mut linker, interface).unwrap();
        }
        assert!(define_wasi(&mut linker, "wasi:http/types").is_err());
    }
}
