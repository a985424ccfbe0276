//! Fuzzes `SKILL.md` parsing (front matter split, YAML, every field rule).
//! It must return a value or an error for any text, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = boternity_skills::skill::manifest::Manifest::parse(text);
        let _ = boternity_skills::skill::manifest::check_name(text);
    }
});
