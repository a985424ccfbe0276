//! Linking: the host functions a component is instantiated against. An
//! executor keeps one linker per set of imported WASI interfaces, holding the
//! skill world's host interface and only those WASI 0.2 interfaces (named in
//! [`crate::skill::world::WASI_INTERFACES`], the table validation reads too). Defining
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
use crate::skill::world::wasi_interface;

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
    use crate::skill::world::WASI_INTERFACES;

    /// One item of each WASI interface in the table, typed exactly as
    /// wasmtime-wasi defines it (an import may name fewer items than the
    /// interface has, never other ones). Rust's std and WASI SDKs import
    /// whole interfaces; one item is enough to need the instance.
    const WIT: &str = r#"
package test:wasi-table;

package wasi:io@0.2.12 {
    interface error { resource error; }
    interface poll { resource pollable; }
    interface streams { resource input-stream; resource output-stream; }
}
package wasi:cli@0.2.12 {
    interface environment { initial-cwd: func() -> option<string>; }
    interface exit { exit: func(status: result); }
    interface stdin { use wasi:io/streams@0.2.12.{input-stream}; get-stdin: func() -> input-stream; }
    interface stdout { use wasi:io/streams@0.2.12.{output-stream}; get-stdout: func() -> output-stream; }
    interface stderr { use wasi:io/streams@0.2.12.{output-stream}; get-stderr: func() -> output-stream; }
    interface terminal-input { resource terminal-input; }
    interface terminal-output { resource terminal-output; }
    interface terminal-stdin { use terminal-input.{terminal-input}; get-terminal-stdin: func() -> option<terminal-input>; }
    interface terminal-stdout { use terminal-output.{terminal-output}; get-terminal-stdout: func() -> option<terminal-output>; }
    interface terminal-stderr { use terminal-output.{terminal-output}; get-terminal-stderr: func() -> option<terminal-output>; }
}
package wasi:clocks@0.2.12 {
    interface monotonic-clock { now: func() -> u64; }
    interface wall-clock { record datetime { seconds: u64, nanoseconds: u32 } now: func() -> datetime; }
}
package wasi:filesystem@0.2.12 {
    interface types { resource descriptor; }
    interface preopens { use types.{descriptor}; get-directories: func() -> list<tuple<descriptor, string>>; }
}
package wasi:random@0.2.12 {
    interface random { get-random-u64: func() -> u64; }
    interface insecure { get-insecure-random-u64: func() -> u64; }
    interface insecure-seed { insecure-seed: func() -> tuple<u64, u64>; }
}
package wasi:sockets@0.2.12 {
    interface network {
        resource network;
        enum error-code {
            unknown, access-denied, not-supported, invalid-argument, out-of-memory, timeout,
            concurrency-conflict, not-in-progress, would-block, invalid-state, new-socket-limit,
            address-not-bindable, address-in-use, remote-unreachable, connection-refused,
            connection-reset, connection-aborted, datagram-too-large, name-unresolvable,
            temporary-resolver-failure, permanent-resolver-failure,
        }
        enum ip-address-family { ipv4, ipv6 }
    }
    interface instance-network { use network.{network}; instance-network: func() -> network; }
    interface ip-name-lookup { resource resolve-address-stream; }
    interface tcp { resource tcp-socket; }
    interface tcp-create-socket {
        use network.{error-code, ip-address-family};
        use tcp.{tcp-socket};
        create-tcp-socket: func(address-family: ip-address-family) -> result<tcp-socket, error-code>;
    }
    interface udp { resource udp-socket; }
    interface udp-create-socket {
        use network.{error-code, ip-address-family};
        use udp.{udp-socket};
        create-udp-socket: func(address-family: ip-address-family) -> result<udp-socket, error-code>;
    }
}
"#;

    /// The core import that uses the item of `interface` in [`WIT`], in the
    /// canonical ABI (a result of more than one value goes through memory).
    fn core_import(interface: &str) -> (&'static str, &'static str) {
        let name = interface.rsplit('/').next().unwrap_or_default();
        match name {
            "error" => ("[resource-drop]error", "(param i32)"),
            "poll" => ("[resource-drop]pollable", "(param i32)"),
            "streams" => ("[resource-drop]input-stream", "(param i32)"),
            "environment" => ("initial-cwd", "(param i32)"),
            "exit" => ("exit", "(param i32)"),
            "stdin" => ("get-stdin", "(result i32)"),
            "stdout" => ("get-stdout", "(result i32)"),
            "stderr" => ("get-stderr", "(result i32)"),
            "terminal-input" => ("[resource-drop]terminal-input", "(param i32)"),
            "terminal-output" => ("[resource-drop]terminal-output", "(param i32)"),
            "terminal-stdin" => ("get-terminal-stdin", "(param i32)"),
            "terminal-stdout" => ("get-terminal-stdout", "(param i32)"),
            "terminal-stderr" => ("get-terminal-stderr", "(param i32)"),
            "monotonic-clock" => ("now", "(result i64)"),
            "wall-clock" => ("now", "(param i32)"),
            "types" => ("[resource-drop]descriptor", "(param i32)"),
            "preopens" => ("get-directories", "(param i32)"),
            "random" => ("get-random-u64", "(result i64)"),
            "insecure" => ("get-insecure-random-u64", "(result i64)"),
            "insecure-seed" => ("insecure-seed", "(param i32)"),
            "network" => ("[resource-drop]network", "(param i32)"),
            "instance-network" => ("instance-network", "(result i32)"),
            "ip-name-lookup" => ("[resource-drop]resolve-address-stream", "(param i32)"),
            "tcp" => ("[resource-drop]tcp-socket", "(param i32)"),
            "tcp-create-socket" => ("create-tcp-socket", "(param i32 i32)"),
            "udp" => ("[resource-drop]udp-socket", "(param i32)"),
            "udp-create-socket" => ("create-udp-socket", "(param i32 i32)"),
            other => panic!("no item of `{interface}` ({other}) in the test's WIT"),
        }
    }

    /// A component importing `interfaces` (at WASI 0.2.12, the newest
    /// release validation accepts), each through one item it really uses.
    fn importing(interfaces: &[&str]) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        let mut world = String::from("world imports {\n");
        let mut imports = String::new();
        for interface in interfaces {
            world.push_str(&format!("    import {interface}@0.2.12;\n"));
            let (item, signature) = core_import(interface);
            imports.push_str(&format!(
                "(import \"{interface}@0.2.12\" \"{item}\" (func {signature}))\n"
            ));
        }
        world.push_str("}\n");
        let package = resolve
            .push_str("wasi-table.wit", &format!("{WIT}\n{world}"))
            .unwrap();
        let world = resolve.select_world(&[package], Some("imports")).unwrap();
        let mut module = wat::parse_str(format!(
            "(module {imports} (memory (export \"memory\") 1) \
             (func (export \"cabi_realloc\") (param i32 i32 i32 i32) (result i32) unreachable))"
        ))
        .unwrap();
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .unwrap()
            .encode()
            .unwrap()
    }

    /// The table validation accepts is the table the executor links: every
    /// interface in it is really defined, by the linker a skill gets.
    #[test]
    fn the_linker_defines_every_interface_of_the_table() {
        let engine = Engine::default();
        let linkers = Linkers::new();
        let component = Component::new(&engine, importing(WASI_INTERFACES)).unwrap();
        let imported = component.component_type().imports(&engine).count();
        assert_eq!(imported, WASI_INTERFACES.len());
        let linker = linkers.for_component(&engine, &component).unwrap();
        linker.instantiate_pre(&component).unwrap();
        // One at a time too: each is defined on its own, not by a neighbour.
        for interface in WASI_INTERFACES {
            let component = Component::new(&engine, importing(&[interface])).unwrap();
            let linker = linkers.for_component(&engine, &component).unwrap();
            linker
                .instantiate_pre(&component)
                .unwrap_or_else(|e| panic!("{interface}: {e:#}"));
        }
    }

    /// A test of the test: what a linker does not define does not link.
    #[test]
    fn an_interface_left_out_does_not_link() {
        let engine = Engine::default();
        let component = Component::new(&engine, importing(&["wasi:io/error"])).unwrap();
        let mut bare = Linker::<HostState>::new(&engine);
        assert!(bare.instantiate_pre(&component).is_err());
        define_wasi(&mut bare, "wasi:io/error").unwrap();
        bare.instantiate_pre(&component).unwrap();
        assert!(define_wasi(&mut bare, "wasi:http/types").is_err());
    }
}
