//! Checks the CLI's `--message-format json` lines against the committed JSON
//! Schema (docs/schema/messages.schema.json, which `cargo xtask man`
//! generates from the message types): every JSON line the suite reads goes
//! through [`validate_json_line`].
//!
//! A checker of its own for the keywords the generated schema uses (a
//! schema crate's dependencies would change the features, and so the
//! builds, of the crates boternity shares with it): `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `uniqueItems`, `enum`,
//! `const`, `oneOf`, `anyOf`, `allOf`, `$ref` into `$defs`, `minimum`,
//! `maximum` and the integer `format`s. A schema using any other keyword
//! fails loudly ([`KNOWN_KEYWORDS`]), so the subset cannot silently fall
//! behind the generator.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

/// The keywords [`check`] understands (annotations included).
pub const KNOWN_KEYWORDS: &[&str] = &[
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "uniqueItems",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "allOf",
    "minimum",
    "maximum",
];

/// The committed index of every message's schema.
pub fn messages_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/messages.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask man`)", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// Panics unless `line` is one JSON object whose `reason` names a message
/// of the committed schema, and which that message's schema accepts.
pub fn validate_json_line(line: &str) {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    validate_message(&value, line);
}

/// `line` parsed, after [`validate_json_line`].
pub fn json_line(line: &str) -> Value {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    validate_message(&value, line);
    value
}

/// `line` parsed when it is JSON (human output is not), and validated when
/// it is a message (an object with a `reason`: a skill's own JSON output
/// printed by `run` is not).
pub fn maybe_json_line(line: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line).ok()?;
    if value.get("reason").is_some_and(Value::is_string) {
        validate_message(&value, line);
    }
    Some(value)
}

fn validate_message(value: &Value, line: &str) {
    let root = messages_schema();
    let reason = value
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("a message without a `reason`: {line}"));
    let schema = root["$defs"].get(reason).unwrap_or_else(|| {
        panic!(
            "no schema for the message `{reason}` in docs/schema/messages.schema.json \
             (run `cargo xtask man`): {line}"
        )
    });
    let errors = errors(root, schema, value);
    assert!(
        errors.is_empty(),
        "the `{reason}` line does not match docs/schema/{reason}.schema.json \
         (a message type changed: run `cargo xtask man`; a mirror in src/cli/schema.rs \
         drifted from its library type: fix it):\n  {}\n{line}",
        errors.join("\n  ")
    );
}

/// What is wrong with `value` against `schema` (whose `$ref`s point into
/// `root`), one line each, each with where in `value` it is.
pub fn errors(root: &Value, schema: &Value, value: &Value) -> Vec<String> {
    errors_at(root, schema, value, "")
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let object = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            out.push(format!("{at}: no value is allowed here"));
            return;
        }
        Value::Object(object) => object,
        _ => panic!("{at}: a schema is an object or a boolean: {schema}"),
    };
    for key in object.keys() {
        assert!(
            KNOWN_KEYWORDS.contains(&key.as_str()),
            "the schema uses `{key}`, which tests/it/common/schema.rs does not check: teach it"
        );
    }
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("only #/$defs/ references are checked: {reference}"));
        let target = root["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("no $defs/{name}"));
        check(root, target, value, at, out);
    }
    if let Some(types) = object.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("{at}: bad type {types}"),
        };
        if !types.iter().any(|t| is_type(value, t)) {
            out.push(format!(
                "{at}: {value} is not of type {}",
                types.join(" or ")
            ));
            return;
        }
    }
    if let Some(Value::String(format)) = object.get("format")
        && format.starts_with("uint")
        && value.is_number()
        && value.as_u64().is_none()
    {
        out.push(format!(
            "{at}: {value} is not a non-negative integer ({format})"
        ));
    }
    if let Some(constant) = object.get("const")
        && constant != value
    {
        out.push(format!("{at}: {value} is not {constant}"));
    }
    if let Some(Value::Array(allowed)) = object.get("enum")
        && !allowed.contains(value)
    {
        out.push(format!(
            "{at}: {value} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let (Some(minimum), Some(n)) = (
        object.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < minimum
    {
        out.push(format!("{at}: {value} is below {minimum}"));
    }
    if let (Some(maximum), Some(n)) = (
        object.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n > maximum
    {
        out.push(format!("{at}: {value} is above {maximum}"));
    }
    if let Value::Object(fields) = value {
        let properties = object.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = object.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    out.push(format!("{at}: the field `{name}` is missing"));
                }
            }
        }
        for (name, field) in fields {
            let here = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => check(root, property, field, &here, out),
                None => match object.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        out.push(format!("{here}: a field the schema does not list"))
                    }
                    Some(extra) => check(root, extra, field, &here, out),
                    None => {}
                },
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(item) = object.get("items") {
            for (i, element) in items.iter().enumerate() {
                check(root, item, element, &format!("{at}[{i}]"), out);
            }
        }
        if object.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, element) in items.iter().enumerate() {
                if items[..i].contains(element) {
                    out.push(format!("{at}[{i}]: {element} appears twice"));
                }
            }
        }
    }
    if let Some(Value::Array(all)) = object.get("allOf") {
        for sub in all {
            check(root, sub, value, at, out);
        }
    }
    if let Some(Value::Array(any)) = object.get("anyOf") {
        let failures: Vec<Vec<String>> =
            any.iter().map(|s| errors_at(root, s, value, at)).collect();
        if failures.iter().all(|f| !f.is_empty()) {
            out.push(format!(
                "{at}: {value} matches none of anyOf: {}",
                failures.concat().join("; ")
            ));
        }
    }
    if let Some(Value::Array(one)) = object.get("oneOf") {
        let failures: Vec<Vec<String>> =
            one.iter().map(|s| errors_at(root, s, value, at)).collect();
        let matched = failures.iter().filter(|f| f.is_empty()).count();
        if matched != 1 {
            out.push(format!(
                "{at}: {value} matches {matched} of oneOf (exactly one must): {}",
                failures.concat().join("; ")
            ));
        }
    }
}

fn errors_at(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(root, schema, value, at, &mut out);
    out
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        _ => panic!("unknown type `{name}`"),
    }
}
