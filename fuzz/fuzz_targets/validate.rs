//! Fuzzes what every untrusted `skill.wasm` goes through first: classification
//! (component, core module, stub, garbage), wasmparser validation with the
//! world check, and the componentizer's module inspection. None may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = boternity_skills::skill::validate::classify(data);
    let _ = boternity_skills::skill::validate::validate_component(data);
    let _ = boternity_skills::build::componentize::inspect(data);
    let _ = boternity_skills::skill::stub::classify(data);
});
