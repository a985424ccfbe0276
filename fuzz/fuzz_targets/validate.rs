//! Fuzzes what every untrusted `skill.wasm` goes through first: classification
//! (component, core module, stub, garbage), wasmparser validation with the
//! world check, and the componentizer's module inspection. None may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = boternity_skills::validate::classify(data);
    let _ = boternity_skills::validate::validate_component(data);
    let _ = boternity_skills::componentize::inspect(data);
    let _ = boternity_skills::stub::classify(data);
});
