//! A boternity Tool skill. `execute` gets the user's text and answers with its
//! word, line and character counts. Host functions (`log`, `get-context`, and the
//! capability-gated ones) live in `boternity::skill::host`.

wit_bindgen::generate!({
    world: "skill-plugin",
    path: "wit",
});

use boternity::skill::host;

struct Skill;

impl Guest for Skill {
    fn get_name() -> String {
        "{{name}}".to_string()
    }

    fn get_description() -> String {
        "Counts the words, lines and characters of the text it is given.".to_string()
    }

    fn execute(input: String) -> Result<String, String> {
        if input.trim().is_empty() {
            return Err("give me some text to count".to_string());
        }
        let context = host::get_context();
        host::log("info", &format!("counting for bot {}", context.bot_name));
        Ok(format!(
            "words={} lines={} chars={}",
            input.split_whitespace().count(),
            input.lines().count(),
            input.chars().count()
        ))
    }
}

export!(Skill);
